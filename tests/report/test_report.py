"""cnnlib.report.pdf: the PDF builds from the committed results and says what they say."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from pypdf import PdfReader

from cnnlib import config
from cnnlib.report import pdf, tables
from cnnlib.store import artifacts

SECTIONS = [
    "Introduction",
    "Data",
    "Training settings",
    "Architectures",
    "Comparison of the custom networks",
    "Feature maps",
    "Patches that maximally activate a neuron",
    "VGG19 transfer learning",
    "Guided backpropagation",
    "Grad-CAM",
    "Error bars and significance",
    "Sanity checks for the explanations",
    "Which explanation to believe",
    "Against the reference",
    "Provenance",
]


@pytest.fixture(scope="module")
def pdf_text(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.pdf"
    pdf.build(output=out)
    pages = [page.extract_text() for page in PdfReader(out).pages]
    return pages


def _squash(text: str) -> str:
    return " ".join(text.split())


def test_pdf_has_every_section_and_key_numbers(pdf_text):
    text = _squash(" ".join(pdf_text))
    for title in SECTIONS:
        assert title in text, title
    for variant in pdf.VARIANTS + ("vgg19",):
        metrics = json.loads((config.RESULTS_DIR / f"{variant}.json").read_text())["metrics"]
        for split in ("train", "val", "test"):
            assert tables.with_ci(metrics[split]) in text, (variant, split)
    counts = json.loads((config.RESULTS_DIR / "data_split.json").read_text())["counts"]["total"]
    assert f"total {counts['train']} {counts['val']} {counts['test']} {counts['total']}" in text
    best = json.loads((config.RESULTS_DIR / "custom_summary.json").read_text())["best_by_val"]
    assert f"The best variant by validation accuracy is {best}" in text


def test_weights_are_stated_and_fallback_flagged_on_title_page(pdf_text):
    weights = json.loads((config.RESULTS_DIR / "vgg19.json").read_text())["weights"]
    first_page = _squash(pdf_text[0])
    assert f"VGG19 weights: {weights['label']}" in first_page
    if not weights["is_imagenet"]:
        assert "These are not ImageNet transfer-learning results" in first_page
        assert "not ImageNet" in _squash(" ".join(pdf_text))


def _copy_inputs(tmp_path) -> artifacts.Outputs:
    outputs = artifacts.Outputs(config.CLASSES, tmp_path)
    shutil.copytree(config.RESULTS_DIR, outputs.results_dir)
    shutil.copytree(config.FIGURES_DIR, outputs.figures_dir)
    return outputs


def test_missing_results_file_names_the_notebook(tmp_path):
    outputs = _copy_inputs(tmp_path)
    (outputs.results_dir / "gradcam.json").unlink()
    with pytest.raises(pdf.ReportInputMissing, match="07_gradcam.ipynb"):
        pdf.collect(outputs)


def test_missing_figure_is_reported(tmp_path):
    outputs = _copy_inputs(tmp_path)
    (outputs.figures_dir / "gradcam_grid_vgg19.jpg").unlink()
    with pytest.raises(pdf.ReportInputMissing, match="figures/gradcam_grid_vgg19.jpg is missing"):
        pdf.collect(outputs)


def test_pdf_is_byte_identical_when_inputs_are(tmp_path):
    """No commit, date or path in the PDF: two builds from the same inputs give the same bytes,
    and the committed PDF is the one the committed inputs give."""
    first, second = pdf.build(output=tmp_path / "a.pdf"), pdf.build(output=tmp_path / "b.pdf")
    digest = [
        hashlib.sha256(p.read_bytes()).hexdigest() for p in (first, second, config.REPO_ROOT / "report" / "report.pdf")
    ]
    # digests, not the bytes: pytest's diff of two 3 MB byte strings takes longer than CI has (seen: 30+ min)
    assert digest[0] == digest[1], "two builds from the same inputs differ"
    assert digest[0] == digest[2], "report/report.pdf is not what the committed inputs give: run `make pdf`"


def test_pdf_depends_on_its_inputs(tmp_path):
    """A changed result changes the stamped inputs digest (and so the PDF)."""
    outputs = _copy_inputs(tmp_path)
    before = pdf.build(outputs, tmp_path / "a.pdf").read_bytes()
    path = outputs.results_dir / "sanity.json"
    path.write_text(path.read_text().replace('"faithfulness_steps": 20', '"faithfulness_steps": 21'))
    assert pdf.build(outputs, tmp_path / "b.pdf").read_bytes() != before


def test_reference_comparison_arithmetic():
    reference = json.loads(pdf.REFERENCE.read_text())
    checks = {c["model"]: c for c in tables.reference_matrix_checks(reference)}
    assert checks["arch1"]["total"] == 100 and checks["arch1"]["diagonal"] == 53
    assert checks["vgg19"]["diagonal"] == 97 and checks["vgg19"]["reported_test"] == "99.0%"
    sizes = reference["split_sizes"]
    ours = {
        m: {
            "metrics": {
                s: {"accuracy": 0.5, "ci95": [0.4, 0.6], "correct": sizes[s] // 2, "n": sizes[s]}
                for s in ("train", "val", "test")
            }
        }
        for m in reference["accuracy"]
    }
    ours["vgg19"]["weights"] = {"is_imagenet": False}
    rows = {r["model"]: r["splits"] for r in tables.reference_rows(reference, ours)}
    # arch2_transfer test: ours 50/100 against the reference's 56/100: Newcombe (1998) method 10 by hand below
    from cnnlib.stats import statistics

    low, high = statistics.newcombe_unpaired_interval(50, 100, 56, 100)
    assert rows["arch2_transfer"]["test"]["difference"] == tables.points(-0.06, (low, high))
    assert rows["arch2_transfer"]["test"]["role"] == "inferential" and rows["arch1"]["val"]["role"] == "descriptive"
    assert rows["arch1"]["test"]["difference"] == "-"  # the reference reports no test accuracy for arch1
    assert rows["arch1"]["train"]["difference"].startswith("- (0.8008 x 250 is not a whole number")
    assert rows["vgg19"]["test"]["difference"] == "n/a (not ImageNet)"  # random-init VGG19 is not comparable


def test_number_formatting_never_prints_negative_zero():
    assert tables.num(-0.004) == "0.00" and tables.num(-0.004, signed=True) == "0.00"
    assert tables.num(0.25, signed=True) == "+0.25" and tables.num(-0.25) == "-0.25"
    assert tables.p_value(0.2) == "0.200" and tables.p_value(0.0001) == "< 0.001"


def test_report_module_imports_no_tensorflow():
    """`make pdf` only reads JSON and figures: importing cnnlib.report.pdf must not load TensorFlow."""
    import subprocess
    import sys

    code = (
        "import sys, cnnlib.report.pdf; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_repository_stays_light_and_figures_are_exactly_the_reports():
    """Issue 15's budgets: notebooks <= 400 KB each (figures are linked, not embedded), figures/ <= 6 MB,
    the PDF <= 3 MB; and figures/ holds exactly the figures the report shows (no stale files)."""
    notebooks = sorted((config.REPO_ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks and all(n.stat().st_size <= 400_000 for n in notebooks), [
        (n.name, n.stat().st_size) for n in notebooks if n.stat().st_size > 400_000
    ]
    figures = sorted(p for p in config.FIGURES_DIR.iterdir() if p.is_file())
    assert sum(p.stat().st_size for p in figures) <= 6_000_000
    assert (config.REPO_ROOT / "report" / "report.pdf").stat().st_size <= 3_000_000
    _, inputs = pdf.collect()
    shown = {p.resolve() for p in inputs if p.parent.resolve() == config.FIGURES_DIR.resolve()}
    assert {p.resolve() for p in figures} == shown


def test_tensorflow_is_imported_in_one_place():
    """Every cnnlib module takes keras from cnnlib.backend, which on TensorFlow imports it through cnnlib._tensorflow
    (TensorFlow's import-time C++ notes silenced); a direct import anywhere would print them into notebook outputs
    (and break nbval)."""
    import re

    pattern = re.compile(r"^\s*(import (keras|tensorflow)\b|from (keras|tensorflow)\b)", re.M)
    offenders = [
        str(p.relative_to(config.REPO_ROOT))
        for p in sorted((config.REPO_ROOT / "cnnlib").rglob("*.py"))
        if p.name not in ("_tensorflow.py", "backend.py") and pattern.search(p.read_text())
    ]
    assert offenders == []


def test_most_confused_lists_off_diagonal_cells_by_count_then_share():
    confusion = [
        [5, 3, 0],  # a: 3 of 8 taken for b
        [1, 6, 3],  # b: 3 of 10 taken for c (same count, smaller share than a -> b)
        [0, 4, 9],  # c: 4 of 13 taken for b
    ]
    pairs = tables.most_confused(confusion, ["a", "b", "c"], k=3)
    assert [(p["true"], p["predicted"], p["count"], p["n"]) for p in pairs] == [
        ("c", "b", 4, 13),
        ("a", "b", 3, 8),
        ("b", "c", 3, 10),
    ]
    assert pairs[1]["share"] == 3 / 8 and all(p["true"] != p["predicted"] for p in pairs)  # never the diagonal
    assert len(tables.most_confused(confusion, ["a", "b", "c"], k=10)) == 4  # only the non-zero cells
