"""cnnlib.run.notebooks: dependency stages, in-place execution, a failure named, time and peak memory reported."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlib.run import notebooks


def _notebook(path: Path, code: str) -> Path:
    cell = {"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {}, "outputs": [], "source": code}
    kernel = {"display_name": "Python 3", "language": "python", "name": "python3"}
    path.write_text(
        json.dumps({"cells": [cell], "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5})
    )
    return path


def test_stages_run_01_to_03_alone_then_the_rest_longest_first(tmp_path):
    names = ["10_c", "01_a", "05_b", "02_x", "03_y", "08_s", "12_new"]
    paths = [tmp_path / f"{n}.ipynb" for n in names]
    assert [[p.stem for p in stage] for stage in notebooks.stages(paths)] == [
        ["01_a"],
        ["02_x"],
        ["03_y"],
        ["08_s", "10_c", "05_b", "12_new"],
    ]


def test_the_list_parts_make_runs_are_the_stages_split_before_the_last(capsys):
    """``--list-part`` gives make's test recipes the notebooks run one by one and those run together, each on one
    line (no ``head``/``tail``, which differ between GNU and BSD), and together they are ``--list``'s stages."""
    notebooks.main(["--list"])
    stages = capsys.readouterr().out.splitlines()
    notebooks.main(["--list-part", "in-order"])
    in_order = capsys.readouterr().out.splitlines()
    notebooks.main(["--list-part", "together", "--explorer"])
    together = capsys.readouterr().out.splitlines()
    assert len(in_order) == len(together) == 1 and len(stages) >= 2
    assert in_order[0].split() == [p for stage in stages[:-1] for p in stage.split()]
    assert together[0].split()[:-1] == stages[-1].split() and together[0].endswith("explore.ipynb")
    notebooks.main(["--list-part", "longest"])
    longest = capsys.readouterr().out.split()
    notebooks.main(["--list-part", "after-longest", "--explorer"])
    after_longest = capsys.readouterr().out.split()
    assert longest == stages[-1].split()[:1] and longest[0].startswith(f"notebooks/{notebooks.LONGEST_FIRST[0]}_")
    assert longest + after_longest == together[0].split()


def test_execute_in_place_reports_time_and_the_kernels_peak_memory(tmp_path):
    path = _notebook(
        tmp_path / "01_t.ipynb", "import numpy as np\nblock = np.ones(300 * 2**20 // 8)\nprint(block.sum() > 0)"
    )
    done = notebooks.execute(path)
    outputs = json.loads(path.read_text())["cells"][0]["outputs"]
    assert "".join(outputs[0]["text"]).strip() == "True"
    assert done.seconds > 0 and done.peak_mib > 300  # the kernel's 300 MiB array counts, not only nbconvert's


def test_a_failing_notebook_is_named_with_its_error(tmp_path):
    path = _notebook(tmp_path / "04_bad.ipynb", "raise ValueError('broken on purpose')")
    with pytest.raises(RuntimeError, match=r"04_bad.ipynb failed:(.|\n)*broken on purpose"):
        notebooks.execute(path)


def test_output_is_nbconverts_bytes_with_stream_chunks_merged(tmp_path):
    """One child process gives the same file as the two nbconvert commands it replaces (execute in place,
    then merge streams), and a cell that prints in flushed pieces ends with one stream output."""
    code = "import sys\nfor i in range(3):\n    print(i, flush=True)\nprint('err', file=sys.stderr)"
    ours, reference = _notebook(tmp_path / "01_a.ipynb", code), _notebook(tmp_path / "01_b.ipynb", code)
    notebooks.execute(ours)
    nbconvert = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--inplace"]
    run = {"cwd": tmp_path, "check": True, "capture_output": True}
    subprocess.run([*nbconvert, "--execute", "--ExecutePreprocessor.record_timing=False", reference.name], **run)
    subprocess.run([*nbconvert, "--CoalesceStreamsPreprocessor.enabled=True", reference.name], **run)
    assert ours.read_bytes() == reference.read_bytes()
    outputs = json.loads(ours.read_text())["cells"][0]["outputs"]
    assert [(o["name"], "".join(o["text"])) for o in outputs] == [("stdout", "0\n1\n2\n"), ("stderr", "err\n")]


def test_another_class_list_runs_copies_beside_its_outputs_and_leaves_the_notebook_untouched(tmp_path):
    """``CNNLIB_CLASSES`` other than the reference's: the runner executes a copy in <output dir>/<label>/notebooks/
    (the kernel's folder there, so a saved figure's link points at that run's figures/); the source stays as is."""
    code = (
        "import os\nfrom pathlib import Path\nfrom cnnlib.store.artifacts import SavedFigure\nprint(os.getcwd())\n"
        "SavedFigure(Path(os.environ['CNNLIB_OUTPUT_DIR']) / 'alpha-beta' / 'figures' / 'f.png')"
    )
    source = _notebook(tmp_path / "01_t.ipynb", code)
    before = source.read_bytes()
    outputs = tmp_path / "outputs"
    env = {**os.environ, "CNNLIB_CLASSES": "alpha,beta", "CNNLIB_OUTPUT_DIR": str(outputs)}
    env.pop("CNNLIB_DATA_DIR", None)
    subprocess.run(
        [sys.executable, "-m", "cnnlib.run.notebooks", str(source)], env=env, check=True, capture_output=True
    )
    assert source.read_bytes() == before
    executed = json.loads((outputs / "alpha-beta" / "notebooks" / "01_t.ipynb").read_text())["cells"][0]["outputs"]
    assert "".join(executed[0]["text"]).strip() == str(outputs / "alpha-beta" / "notebooks")
    assert "".join(executed[1]["data"]["text/markdown"]) == "![f](../figures/f.png)"
