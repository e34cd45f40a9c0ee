"""Recompute every statistic the report shows from the raw inputs stored in the committed results/.

Each stored number is recomputed here from what it was computed from (counts, per-image predictions,
per-image similarities and curves, per-run accuracies), written out with NumPy/SciPy where the formula is
short, and compared with the stored value. If a results file stores a statistic whose inputs are missing,
a test here fails; nothing is left unchecked in a list of exceptions.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from cnnlib import config
from cnnlib.stats import bootstrap
from cnnlib.stats import statistics as st

RESULTS = config.REPO_ROOT / "results"
REFERENCE = config.REPO_ROOT / "data" / "reference_report.json"
VARIANTS = ("arch1", "arch2", "arch2_transfer", "arch3", "arch3_transfer")
SPLITS = ("train", "val", "test")


def _load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def _correct(record: dict) -> np.ndarray:
    return np.asarray(record["y_pred"]) == np.asarray(record["y_true"])


def _close(a, b, tol=1e-9) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= tol


# --------------------------------------------------------------------------- single runs (notebooks 02, 03)


@pytest.mark.parametrize("model", [*VARIANTS, "vgg19"])
def test_accuracies_and_wilson_intervals_from_counts(model):
    for split, m in _load(model)["metrics"].items():
        confusion = np.asarray(m["confusion"])
        assert confusion.sum() == m["n"] and np.trace(confusion) == m["correct"], (model, split)
        assert m["accuracy"] == m["correct"] / m["n"], (model, split)
        z, p, n = 1.959964, m["correct"] / m["n"], m["n"]
        centre, half = (p + z * z / (2 * n)), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        low, high = max(0.0, (centre - half) / (1 + z * z / n)), min(1.0, (centre + half) / (1 + z * z / n))
        assert np.allclose(m["ci95"], [low, high], atol=1e-6), (model, split)


def test_best_by_validation_from_the_single_runs():
    summary = _load("custom_summary")
    val = {v: _load(v)["metrics"]["val"]["accuracy"] for v in summary["variants"]}
    top = max(val.values())
    assert summary["best_by_val"] == next(v for v in summary["variants"] if val[v] == top)


# --------------------------------------------------------------------------- notebook 08


@pytest.fixture(scope="module")
def statistics():
    return _load("statistics")


@pytest.fixture(scope="module")
def predictions():
    return _load("predictions")


def test_stored_predictions_give_every_run_accuracy(statistics, predictions):
    for row in statistics["seed_runs"]:
        record = predictions["seeds"][str(row["seed"])][row["model"]]
        assert _correct(record).mean() == pytest.approx(row["test"], abs=1e-12), row
    for row in statistics["split_runs"]:
        record = predictions["splits"][str(row["split_seed"])][row["model"]]
        assert _correct(record).mean() == pytest.approx(row["test"], abs=1e-12), row


def test_seed_42_records_are_the_single_runs_of_notebooks_02_and_03(predictions):
    for model in (*VARIANTS, "vgg19"):
        record = predictions["seeds"]["42"][model]
        assert int(_correct(record).sum()) == _load(model)["metrics"]["test"]["correct"], model


def test_t_intervals_from_the_runs(statistics):
    for runs, summary in (
        (statistics["seed_runs"], statistics["seed_summary"]),
        (statistics["split_runs"], statistics["split_summary"]),
    ):
        for model, by_split in summary.items():
            for split, t in by_split.items():
                values = np.array([r[split] for r in runs if r["model"] == model])
                mean, sd = values.mean(), values.std(ddof=1)
                half = stats.t.ppf(0.975, len(values) - 1) * sd / math.sqrt(len(values))
                assert t["n"] == len(values)
                assert np.allclose([t["mean"], t["sd"], *t["ci"]], [mean, sd, mean - half, mean + half], atol=1e-12)


def test_picks_and_ties_from_the_runs(statistics):
    for runs, picks in (
        (statistics["seed_runs"], statistics["best_by_val_per_seed"]),
        (statistics["split_runs"], statistics["best_by_val_per_split"]),
    ):
        for run, pick in picks.items():
            rows = [r for r in runs if f"split {r['split_seed']}, seed {r['seed']}" == run and r["model"] != "vgg19"]
            top = max(r["val"] for r in rows)
            tied = [r["model"] for r in rows if r["val"] == top]
            assert pick["tied"] == tied and pick["pick"] == tied[0], run


def test_paired_comparisons_from_the_predictions(statistics, predictions):
    records = predictions["seeds"][str(statistics["seeds"][0])]
    raw = []
    for row in statistics["comparisons"]:
        a, b = _correct(records[row["A"]]), _correct(records[row["B"]])
        a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
        assert (row["a_only"], row["b_only"], row["n"]) == (a_only, b_only, len(a))
        assert row["difference"] == pytest.approx((a_only - b_only) / len(a), abs=1e-12)
        p = 1.0 if a_only + b_only == 0 else min(1.0, 2 * stats.binom.cdf(min(a_only, b_only), a_only + b_only, 0.5))
        assert row["p"] == pytest.approx(p, rel=1e-9)
        both, neither = int(np.sum(a & b)), int(np.sum(~a & ~b))
        assert row["ci"] == pytest.approx(list(st.newcombe_paired_interval(both, a_only, b_only, neither)), abs=1e-12)
        assert row["ci"][0] <= row["difference"] <= row["ci"][1]
        raw.append(row["p"])
    primary = statistics["primary"]
    assert (statistics["comparisons"][0]["A"], statistics["comparisons"][0]["B"]) == (primary["A"], primary["B"])
    assert statistics["comparisons"][0]["p_holm"] is None  # the primary is tested alone, outside the family
    secondary = raw[1:]
    order = np.argsort(secondary)  # Holm over the secondaries, written out: step-down, running maximum, capped at 1
    holm, running = [0.0] * len(secondary), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(secondary) - rank) * secondary[i]))
        holm[i] = running
    assert [r["p_holm"] for r in statistics["comparisons"][1:]] == pytest.approx(holm, rel=1e-12)


def test_bootstraps_from_the_predictions(statistics, predictions):
    seeds, n_boot = statistics["seeds"], statistics["n_boot"]
    for pair, by_level in statistics["bootstrap"].items():
        a, b = pair.split(" - ")
        images = bootstrap.paired_bootstrap(
            _correct(predictions["seeds"][str(seeds[0])][a]),
            _correct(predictions["seeds"][str(seeds[0])][b]),
            n_boot,
            seeds[0],
        )
        grid = [np.stack([_correct(predictions["seeds"][str(s)][m]) for s in seeds]) for m in (a, b)]
        crossed = bootstrap.hierarchical_bootstrap(*grid, n_boot, seeds[0])
        for stored, recomputed in ((by_level["images (seed 42)"], images), (by_level["seeds x images"], crossed)):
            assert stored["difference"] == pytest.approx(recomputed["difference"], abs=1e-12)
            assert stored["ci"] == pytest.approx(recomputed["ci"], abs=1e-12)


def test_the_bootstraps_monte_carlo_error_from_the_predictions(statistics, predictions):
    """The images level of the primary pair's endpoint spread, recomputed (the seeds x images level costs about
    30 s and goes through the same function, tested in test_statistics.py)."""
    primary, seeds = statistics["primary"], statistics["seeds"]
    stored = statistics["bootstrap_monte_carlo"][f"images (seed {seeds[0]})"]
    run = predictions["seeds"][str(seeds[0])]
    again = bootstrap.endpoint_monte_carlo_sd(
        bootstrap.paired_bootstrap,
        _correct(run[primary["A"]]),
        _correct(run[primary["B"]]),
        stored["n_boot"],
        stored["repeats"],
    )
    assert again["sd"] == pytest.approx(stored["sd"], abs=1e-12)
    assert [r for pair in again["range"] for r in pair] == pytest.approx([r for pair in stored["range"] for r in pair])
    assert (again["n_boot"], again["repeats"]) == (stored["n_boot"], stored["repeats"])
    assert set(statistics["bootstrap_monte_carlo"]) == {f"images (seed {seeds[0]})", "seeds x images"}


# --------------------------------------------------------------------------- against the reference


def test_reference_differences_from_counts():
    reference = json.loads(REFERENCE.read_text())
    for model, accuracy in reference["accuracy"].items():
        test = accuracy["test"]
        if test is None:
            continue
        n_ref = reference["split_sizes"]["test"]
        assert abs(test * n_ref - round(test * n_ref)) < 1e-9, model  # a whole number of images
        ours = _load(model)["metrics"]["test"]
        result = st.against_reference(ours["correct"], ours["n"], test, n_ref)
        assert result["difference"] == pytest.approx(ours["accuracy"] - test)
        assert result["ci"][0] <= result["difference"] <= result["ci"][1]


# --------------------------------------------------------------------------- notebook 09


@pytest.fixture(scope="module")
def sanity():
    return _load("sanity"), _load("sanity_per_image")


def _mean(values) -> float | None:
    values = np.array([np.nan if v is None else v for v in np.ravel(np.array(values, dtype=object))], float)
    return None if np.all(np.isnan(values)) else float(np.nanmean(values))


def test_cascade_means_and_constant_counts_from_per_image_values(sanity):
    summary, per_image = sanity
    for method, rows in summary["cascading_randomization"].items():
        stored = per_image["cascade"][method]
        for k, row in enumerate(rows):
            for key in ("spearman", "spearman_abs", "ssim"):
                values = [stored[key][s][k] for s in range(len(stored[key]))]
                assert _close(row[key], _mean(values), tol=1e-4), (method, k, key)  # per-image values stored rounded
            assert row["n_constant_randomized"] == int(
                np.sum([stored["constant_randomized"][s][k] for s in range(len(stored["constant_randomized"]))])
            )


@pytest.mark.parametrize("part", ["calibration", "data_randomization"])
def test_calibration_and_data_randomisation_from_per_image_values(sanity, part):
    summary, per_image = sanity
    stored_summary = summary["calibration"]["similarity"] if part == "calibration" else summary["data_randomization"]
    for method, row in stored_summary.items():
        for key in ("spearman", "spearman_abs", "ssim"):
            assert _close(row[key], _mean(per_image[part][method][key]), tol=1e-4), (part, method, key)
        assert row["n_constant_other"] == int(np.sum(per_image[part][method]["constant_other"]))


def test_faithfulness_aucs_and_differences_from_the_curves(sanity):
    summary, per_image = sanity
    for method, auc in summary["faithfulness_auc"].items():
        for kind in ("deletion", "insertion"):
            curves = np.asarray(per_image["curves"][method][kind])
            per = np.trapezoid(curves, np.linspace(0, 1, curves.shape[1]), axis=1)
            assert auc[f"{kind} AUC"] == pytest.approx(per.mean(), abs=1e-4), (method, kind)
    for row in summary["faithfulness_differences"]:
        a, b = (np.asarray(per_image["curves"][m][row["curve"]]) for m in (row["A"], row["B"]))
        grid = np.linspace(0, 1, a.shape[1])
        diff = np.trapezoid(a, grid, axis=1) - np.trapezoid(b, grid, axis=1)
        assert row["difference"] == pytest.approx(diff.mean(), abs=1e-4)
        assert row["ci"][0] - 1e-3 <= row["difference"] <= row["ci"][1] + 1e-3
    for method, auc in summary["rise_auc"].items():
        curves = np.asarray(per_image["rise_curves"][method]["deletion"])
        assert auc["deletion AUC"] == pytest.approx(
            np.trapezoid(curves, np.linspace(0, 1, curves.shape[1]), axis=1).mean(), abs=1e-4
        )


def test_random_label_accuracies_from_counts(sanity):
    summary, _ = sanity
    for split, counts in summary["random_label_model_counts"].items():
        assert summary["random_label_model_accuracy"][split] == counts["correct"] / counts["n"]
