"""The README is a front door that cannot drift: its findings are the committed results' own sentences, every
relative link in it and in docs/ resolves (anchors included), and it stays short."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from cnnlib import config
from cnnlib.report import findings

README = config.REPO_ROOT / "README.md"
PAGES = [README, *sorted((config.REPO_ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_anchor(line.lstrip("#")) for line in page.read_text().splitlines() if line.startswith("#")}


def test_the_findings_are_the_committed_results_own_sentences():
    text = README.read_text()
    block = text.split("<!-- findings:", 1)[1].split("<!-- /findings -->", 1)[0].split("\n", 1)[1]
    shown = [line[2:] for line in block.strip().splitlines()]
    assert shown == findings.committed_headline(), "README findings differ: paste `python -m cnnlib.report.findings`"


def test_the_upsampling_table_is_the_committed_benchmark():
    text = README.read_text()
    block = text.split("<!-- localisation:", 1)[1].split("<!-- /localisation -->", 1)[0].split("\n", 1)[1]
    assert block.strip() == findings.localisation_markdown(), (
        "README upsampling table differs: paste `python -m cnnlib.report.findings --localisation`"
    )


def test_the_settings_page_is_the_settings_table_and_every_setting_read_is_declared():
    """docs/settings.md shows ``config.SETTINGS`` as generated; every ``CNNLIB_*`` name the code spells is declared
    there (so an error message, the docs and the reader cannot disagree on a setting's values)."""
    page = (config.REPO_ROOT / "docs" / "settings.md").read_text()
    assert config.settings_markdown() in page, "docs/settings.md differs: paste config.settings_markdown()"
    spelled = set()
    for path in (config.REPO_ROOT / "cnnlib").rglob("*.py"):
        spelled |= set(re.findall(r"\b(CNNLIB_[A-Z0-9_]+|CALTECH101_DIR)\b", path.read_text()))
    undeclared = sorted(n for n in spelled if n not in {s.name for s in config.SETTINGS} | {"CALTECH101_DIR"})
    assert not undeclared, f"settings the code reads but config.SETTINGS does not declare: {undeclared}"
    with pytest.raises(KeyError, match="CNNLIB_NOPE is not a declared setting"):
        config.env_setting("CNNLIB_NOPE", {})
    with pytest.raises(config.SettingError, match=r"CNNLIB_NOTEBOOK_JOBS='0' is not a valid value; use a whole"):
        config.notebook_jobs({"CNNLIB_NOTEBOOK_JOBS": "0"})


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_relative_link_resolves(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target} (no heading #{anchor} in {resolved.name})")
    assert not broken, f"{page.name}: {len(broken)} broken link(s): {broken}"


def test_the_readme_is_a_front_door():
    lines = README.read_text().splitlines()
    assert len(lines) <= 160, f"README has {len(lines)} lines; move reference material to docs/"
    linked = set(LINK.findall(README.read_text()))
    missing = [p.name for p in PAGES[1:] if f"docs/{p.name}" not in linked]
    assert not missing, f"docs pages the README does not link: {missing}"


def test_the_results_page_is_the_results_schema():
    """docs/results.md shows ``cnnlib.store.schema`` as generated: a key added to a record appears there."""
    page = (config.REPO_ROOT / "docs" / "results.md").read_text()
    from cnnlib.store import schema

    assert schema.schema_markdown() in page, "docs/results.md differs: paste schema.schema_markdown()"


@pytest.mark.backends
def test_the_own_model_lines_run_on_this_backend():
    """The README's "Use it on your own model" block, executed as written (``make test`` runs it on TensorFlow and,
    marked ``backends``, on JAX; ``make test-torch`` on PyTorch)."""
    block = README.read_text().split("<!-- own-model:", 1)[1].split("<!-- /own-model -->", 1)[0]
    code = block.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict = {}
    exec(compile(code, "README.md (own-model block)", "exec"), scope)  # noqa: S102 - our own README
    cams = scope["cams"]
    assert cams.shape == (2, 2, 224, 224) and cams.dtype == np.float32
    peaks = cams.reshape(4, -1).max(axis=1)  # each map divided by its maximum (an all-zero map stays zero)
    assert cams.min() >= 0 and np.all(np.isclose(peaks, 1) | (peaks == 0)) and np.isclose(peaks, 1).any(), peaks


def test_the_jax_numbers_are_the_recorded_run():
    """The README's sentences on the main job under JAX quote results/benchmarks.json "main_job_jax" (written by
    ``benchmarks/bench_main_job.py --backend jax``), not numbers typed by hand."""
    text = " ".join(README.read_text().split())
    stored = json.loads((config.RESULTS_DIR / "benchmarks.json").read_text())["main_job_jax"]
    (run,) = stored["commits"].values()
    measured = run["cold"]["against_committed_tensorflow_outputs"]
    jax = measured["comparisons"]["arch3_transfer - arch3"]["candidate"]
    low, high = jax["ci95"]
    assert f"{100 * jax['difference']:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}] points, Holm p = " in text
    assert f"Holm p = {jax['p_holm']:.3f}" in text
    shifts = [m["difference"] for m in measured["test_accuracy_over_seeds"].values()]
    assert f"within {100 * min(shifts):+.1f} to {100 * max(shifts):+.1f} points of TensorFlow's" in text
    assert all(lo <= 0 <= hi for lo, hi in (m["welch_ci95"] for m in measured["test_accuracy_over_seeds"].values()))


def test_the_gpu_numbers_are_the_recorded_run():
    """The README's sentences on the H200 run quote results/benchmarks.json "main_job_gpu" (written by
    ``benchmarks/bench_main_job.py --from-device``)."""
    text = " ".join(README.read_text().split())
    stored = json.loads((config.RESULTS_DIR / "benchmarks.json").read_text())["main_job_gpu"]
    assert stored["machine"]["tensorflow"] == "absent" and "H200" in stored["machine"]["gpu"]
    assert f"the ten notebooks ran in {stored['cold']['notebooks_seconds']:.0f} s" in text
    measured = stored["cold"]["against_committed_tensorflow_outputs"]
    gpu = measured["comparisons"]["arch3_transfer - arch3"]["candidate"]
    low, high = gpu["ci95"]
    assert (
        f"H200 GPU {100 * gpu['difference']:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}], Holm p = {gpu['p_holm']:.3f}"
        in text
    )
    shifts = [m["difference"] for m in measured["test_accuracy_over_seeds"].values()]
    assert f"every interval contains 0 ({100 * min(shifts):+.1f} to {100 * max(shifts):+.1f} points)" in text
    assert all(lo <= 0 <= hi for lo, hi in (m["welch_ci95"] for m in measured["test_accuracy_over_seeds"].values()))
    (primary,) = [
        c["candidate"]["comparison"]
        for c in measured["comparisons"].values()
        if "vgg19" in c["candidate"]["comparison"]
    ]
    assert f"best custom network by validation was {primary.split(' - ')[0]}" in text
