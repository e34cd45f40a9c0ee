"""cnnlib.arithmetic: importing cnnlib pins the float32 arithmetic for this process and its children; the
opt-out is one setting and the provenance says which arithmetic made a result."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cnnlib import arithmetic, config
from cnnlib.config import SettingError
from cnnlib.store import results


def _pinned_values() -> dict[str, str]:
    return {name: value for name, (value, _, _) in arithmetic.PINNED.items()}


def test_apply_sets_every_pinned_variable_and_overrides_a_user_cap():
    env = {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}
    changed = arithmetic.apply(env)
    assert env == _pinned_values()
    assert changed == _pinned_values()
    assert arithmetic.apply(env) == {}  # already pinned: nothing to do


def test_machine_set_openblas_core_is_kept():
    env = {"OPENBLAS_CORETYPE": "Sandybridge"}
    arithmetic.apply(env)
    assert env["OPENBLAS_CORETYPE"] == "Sandybridge"
    assert arithmetic.describe(env)["settings"]["OPENBLAS_CORETYPE"] == "Sandybridge"


def test_native_opts_out_and_says_so():
    env = {"CNNLIB_ARITHMETIC": "native"}
    assert arithmetic.apply(env) == {}
    assert env == {"CNNLIB_ARITHMETIC": "native"}
    assert arithmetic.describe(env) == {"mode": "native", "settings": dict.fromkeys(arithmetic.PINNED, "unset")}


@pytest.mark.parametrize("value", ["", "fast", "AVX2"])
def test_unknown_mode_is_a_setting_error_naming_the_values(value):
    with pytest.raises(SettingError, match="CNNLIB_ARITHMETIC"):
        arithmetic.apply({"CNNLIB_ARITHMETIC": value})


def test_provenance_records_the_arithmetic():
    block = results.provenance(config.SEED, "0" * 64, "full")
    assert block["arithmetic"] == arithmetic.describe()
    assert block["arithmetic"]["mode"] == os.environ.get("CNNLIB_ARITHMETIC", "pinned")


def _child(code: str, **env: str) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in arithmetic.PINNED and k != "CNNLIB_ARITHMETIC"}
    done = subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_cnnlib_pins_this_process_and_its_children_before_numpy_loads():
    code = (
        "import json, os, subprocess, sys; import cnnlib; from cnnlib import arithmetic; import numpy;"
        "child = subprocess.run([sys.executable, '-c', 'import os, json; print(json.dumps(dict(os.environ)))'],"
        " capture_output=True, text=True).stdout;"
        "print(json.dumps({'here': arithmetic.describe(), 'child': json.loads(child)}))"
    )
    seen = _child(code)
    assert seen["here"] == {"mode": "pinned", "settings": _pinned_values()}
    for name, value in _pinned_values().items():
        assert seen["child"][name] == value


def test_a_library_loaded_before_the_pin_is_recorded():
    code = "import json, numpy; import cnnlib; from cnnlib import arithmetic; print(json.dumps(arithmetic.describe()))"
    assert _child(code)["loaded_before_pin"] == ["numpy"]
    # inherited from a pinned parent (as make's notebook kernels are): pinned from the first line
    assert "loaded_before_pin" not in _child(code, **_pinned_values())


def test_report_summary_names_the_mode_and_what_it_guarantees():
    pinned = arithmetic.describe(_pinned_values())
    assert "trained networks and decisions the same bytes on x86-64 CPUs with AVX2" in arithmetic.summary(pinned)
    native = arithmetic.describe({"CNNLIB_ARITHMETIC": "native"})
    assert arithmetic.summary(native).startswith("native") and "same CPU model" in arithmetic.summary(native)
    assert "not recorded" in arithmetic.summary(None)


def test_nbval_kernels_inherit_the_pin_even_when_the_notebook_imports_numpy_first(tmp_path):
    """pyproject's ``-p cnnlib`` pins pytest's own environment before nbval starts a kernel."""
    expected = " ".join(_pinned_values()[k] for k in ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA"))
    source = "import numpy, os\nprint(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), os.environ.get('ONEDNN_MAX_CPU_ISA'))"
    cell = {"cell_type": "code", "execution_count": 1, "id": "c0", "metadata": {}, "source": source}
    cell["outputs"] = [{"name": "stdout", "output_type": "stream", "text": expected + "\n"}]
    kernel = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}
    notebook = tmp_path / "pinned.ipynb"
    notebook.write_text(json.dumps({"cells": [cell], "metadata": kernel, "nbformat": 4, "nbformat_minor": 5}))
    base = {k: v for k, v in os.environ.items() if k not in arithmetic.PINNED and k != "CNNLIB_ARITHMETIC"}
    args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(config.REPO_ROOT / "pyproject.toml")]
    done = subprocess.run(
        [sys.executable, *args, "--nbval", "--nbval-current-env", str(notebook)],
        env=base,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:]
