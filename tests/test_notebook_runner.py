"""cnnlib.notebooks: dependency stages, in-place execution, a failure named, time and peak memory reported."""

import json
from pathlib import Path

import pytest

from cnnlib import notebooks


def _notebook(path: Path, code: str) -> Path:
    cell = {"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {}, "outputs": [], "source": code}
    kernel = {"display_name": "Python 3", "language": "python", "name": "python3"}
    path.write_text(
        json.dumps({"cells": [cell], "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5})
    )
    return path


def test_stages_run_01_to_03_alone_then_the_rest_longest_first(tmp_path):
    names = ["11_c", "01_a", "05_b", "02_x", "03_y", "08_s", "12_new"]
    paths = [tmp_path / f"{n}.ipynb" for n in names]
    assert [[p.stem for p in stage] for stage in notebooks.stages(paths)] == [
        ["01_a"],
        ["02_x"],
        ["03_y"],
        ["08_s", "11_c", "05_b", "12_new"],
    ]


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
