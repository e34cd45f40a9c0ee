"""cnnlib.stats.evaluation and cnnlib.store.results."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from cnnlib.stats import evaluation
from cnnlib.store import results
from cnnlib.store.files import OutputNotWritable


def _mcnemar(y, a, b):
    from cnnlib.stats import statistics

    t = statistics.paired_table(np.asarray(a) == np.asarray(y), np.asarray(b) == np.asarray(y))
    return {"a_only": t["a_only"], "b_only": t["b_only"], "p_value": statistics.mcnemar_p(t["a_only"], t["b_only"])}


def test_wilson_interval_matches_published_values():
    # Newcombe (1998), Statistics in Medicine 17:857, Table I: 81/263 -> 0.2553 to 0.3662.
    low, high = evaluation.wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    # Same table: 0/10 -> 0 to 0.2775; 1/29 -> 0.0061 to 0.1718.
    assert tuple(round(v, 4) for v in evaluation.wilson_interval(0, 10)) == (0.0, 0.2775)
    assert tuple(round(v, 4) for v in evaluation.wilson_interval(1, 29)) == (0.0061, 0.1718)
    with pytest.raises(ValueError):
        evaluation.wilson_interval(1, 0)


def test_mcnemar_exact_matches_binomial_arithmetic_and_scipy():
    y = np.zeros(40, int)
    # A right and B wrong on 1 image, A wrong and B right on 9, both right on the other 30.
    a = np.array([0] * 31 + [1] * 9)
    b = np.array([1] + [0] * 39)
    result = _mcnemar(y, a, b)
    assert (result["a_only"], result["b_only"]) == (1, 9)
    assert result["p_value"] == pytest.approx(2 * 11 / 1024)  # 2 * P(X <= 1), X ~ Bin(10, 1/2)
    from scipy.stats import binomtest

    assert result["p_value"] == pytest.approx(binomtest(1, 10, 0.5).pvalue)
    assert _mcnemar(y, a, a)["p_value"] == 1.0
    assert evaluation.mean_sd([0.6, 0.7, 0.8]) == pytest.approx((0.7, 0.1))


def test_split_metrics_confusion_orientation():
    y_true = np.array([0, 0, 1, 2])
    y_pred = np.array([0, 1, 1, 1])
    m = evaluation.split_metrics(y_true, y_pred, n_classes=3)
    assert m["confusion"] == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]  # rows true, columns predicted
    assert m["accuracy"] == 0.5 and m["correct"] == 2 and m["n"] == 4
    assert m["ci95"][0] < 0.5 < m["ci95"][1]


def test_best_by_breaks_ties_towards_earlier_model():
    metrics = {"a": {"val": {"accuracy": 0.6}}, "b": {"val": {"accuracy": 0.7}}, "c": {"val": {"accuracy": 0.7}}}
    assert evaluation.best_by(metrics) == "b"


def test_results_round_trip_and_missing_file_message(tmp_path):
    payload = {"value": 1, "provenance": {"seed": 3}}
    path = results.write_results("thing", payload, folder=tmp_path)
    assert results.read_results("thing", folder=tmp_path) == payload
    assert path.read_text().endswith("}\n")
    with pytest.raises(ValueError, match="provenance"):
        results.write_results("bad", {"value": 1}, folder=tmp_path)
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the results folder should be")
    with pytest.raises(OutputNotWritable, match="Cannot write .*blocked/thing.json"):
        results.write_results("thing", payload, folder=blocker)
    with pytest.raises(FileNotFoundError, match="notebooks/02_custom_architectures.ipynb"):
        results.read_results("absent", folder=tmp_path, notebook="02_custom_architectures.ipynb")


def test_package_versions_equal_the_imported_modules_and_need_no_tensorflow_import():
    """Versions come from the installed metadata when a module is not loaded yet (notebook 01 never
    imports TensorFlow); they must be exactly what the imported modules say."""
    code = (
        "import json, sys; from cnnlib.store import results; v = results.package_versions(); "
        "print(json.dumps([v, 'tensorflow' in sys.modules]))"
    )
    versions, imported = json.loads(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    )
    assert not imported
    import keras
    import sklearn
    import tensorflow

    assert versions["tensorflow"] == tensorflow.__version__
    assert versions["keras"] == keras.__version__
    assert versions["numpy"] == np.__version__
    assert versions["scikit-learn"] == sklearn.__version__
    assert results.package_versions() == versions  # loaded modules: their own __version__


def test_a_package_this_python_lacks_is_named_not_installed(monkeypatch):
    """A JAX- or PyTorch-only machine has no TensorFlow: the provenance says so instead of failing (the GPU run
    of benchmarks/gpu_main_job.sh stopped in notebook 01 on exactly this)."""
    monkeypatch.setitem(results._DISTRIBUTIONS, "cnnlib_absent_package", ("cnnlib-absent-package",))
    assert results._version("cnnlib_absent_package") == results.NOT_INSTALLED
