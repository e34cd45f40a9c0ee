"""Every notebook and the PDF on a second, different class list, in the smoke profile.

The class list goes in as a user would pass it (papermill parameters; the environment for the
report), outputs go to a temporary folder, and the committed outputs stay byte-identical.
Marked ``notebooks``: it runs in ``make test`` (CI), not in ``make unit``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest

from cnnlib import config
from cnnlib.data import locate
from cnnlib.store import artifacts

# The image folder, read at import: the per-test fixture in conftest.py hides the user's settings from tests.
DATASET = os.environ.get("CNNLIB_DATA_DIR") or os.environ.get("CALTECH101_DIR")
OTHER_CLASSES = ["bonsai", "chandelier", "grand_piano", "helicopter", "watch"]
# Smaller repeat counts than the committed run (each notebook ignores the ones it does not have): the point
# here is that every notebook runs on other classes, not the numbers; the smoke profile trains 3 epochs.
SMOKE_PARAMETERS = {
    "SPLIT_SIZES": {"train": 20, "val": 5, "test": 10},  # notebook 01; the later notebooks read it back
    "SEEDS": [42, 43],
    "SPLIT_SEEDS": [42, 1],
    "RANDOMIZATION_SEEDS": [42],
    "RANDOM_DRAWS": 10,  # the comparison refuses fewer (a baseline of fewer draws is too noisy)
    "CASCADE_IMAGES": 3,
    "N_BOOT": 200,
    "PERMUTED_EPOCHS": 3,
    "AM_STEPS": 8,
}


def _committed_state() -> dict[str, str]:
    """SHA-256 of every committed file under results/, figures/, data/splits/, report/ and notebooks/
    (git's list; ignored build folders such as report/.build/ are not committed outputs)."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "results", "figures", "data/splits", "report", "notebooks"],
            cwd=config.REPO_ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    return {name: hashlib.sha256((config.REPO_ROOT / name).read_bytes()).hexdigest() for name in listed if name}


@pytest.mark.notebooks
def test_every_notebook_and_the_pdf_run_on_another_class_list(tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill", reason="papermill is in requirements-dev.txt (make testdeps)")
    if not DATASET:
        pytest.fail("Set CNNLIB_DATA_DIR (or CALTECH101_DIR) to a Caltech-101 folder: this test needs real images.")
    monkeypatch.setenv("CNNLIB_DATA_DIR", DATASET)
    if locate.find_dataset(OTHER_CLASSES) is None:
        pytest.fail(f"The classes {OTHER_CLASSES} are not in {DATASET}: point CNNLIB_DATA_DIR at Caltech-101.")
    before = _committed_state()
    monkeypatch.setenv("CNNLIB_OUTPUT_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("CNNLIB_PROFILE", "smoke")
    # the numbered analysis notebooks; the explorer (explore.ipynb) is interactive (tests/explore/test_explore.py)
    notebooks = sorted((config.REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert len(notebooks) >= 9
    for notebook in notebooks:
        papermill.execute_notebook(
            str(notebook),
            str(tmp_path / notebook.name),
            cwd=str(notebook.parent),
            progress_bar=False,
            parameters={**SMOKE_PARAMETERS, "CLASSES": ",".join(OTHER_CLASSES)},
            kernel_name="python3",
        )
    outputs = artifacts.outputs_for(OTHER_CLASSES)
    assert outputs.root == tmp_path / "outputs" / "-".join(OTHER_CLASSES)
    assert outputs.read_results("data_split")["classes"] == OTHER_CLASSES
    assert outputs.read_results("data_split")["split_sizes"] == SMOKE_PARAMETERS["SPLIT_SIZES"]  # parameters used
    assert outputs.read_results("statistics")["seeds"] == SMOKE_PARAMETERS["SEEDS"]
    assert outputs.read_results("vgg19")["provenance"]["profile"] == "smoke"
    assert outputs.read_results("feature_maps")["example_class"] == OTHER_CLASSES[0]  # no scorpion here

    from pypdf import PdfReader

    from cnnlib.report import pdf

    monkeypatch.setenv("CNNLIB_CLASSES", ",".join(OTHER_CLASSES))
    pdf.main()  # what `make pdf` runs
    text = " ".join(page.extract_text() for page in PdfReader(outputs.report_pdf).pages)
    title_page = " ".join(PdfReader(outputs.report_pdf).pages[0].extract_text().split())
    assert all(c in title_page for c in OTHER_CLASSES) and "scorpion" not in text
    assert _committed_state() == before, "a run on other classes changed committed outputs"
    assert not os.path.exists(config.REPO_ROOT / "outputs" / "-".join(OTHER_CLASSES))
