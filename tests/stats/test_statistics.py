"""cnnlib.stats.statistics against published values, independent libraries and simulation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from cnnlib.stats import bootstrap
from cnnlib.stats import statistics as st

# Newcombe (1998), "Interval estimation for the difference between independent proportions: comparison of
# eleven methods", Stat Med 17:873, Table II, method 10 (examples a, b, c, d, h).
NEWCOMBE_UNPAIRED = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


@pytest.mark.parametrize("counts, published", NEWCOMBE_UNPAIRED)
def test_newcombe_unpaired_matches_published_table(counts, published):
    assert tuple(round(v, 4) for v in st.newcombe_unpaired_interval(*counts)) == published


def test_newcombe_unpaired_matches_statsmodels():
    from statsmodels.stats.proportion import confint_proportions_2indep

    rng = np.random.default_rng(0)
    for _ in range(50):
        n1, n2 = rng.integers(5, 300, 2)
        x1, x2 = rng.integers(0, n1 + 1), rng.integers(0, n2 + 1)
        expected = confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", compare="diff")
        np.testing.assert_allclose(st.newcombe_unpaired_interval(x1, n1, x2, n2), expected, atol=1e-6)


def test_wilson_matches_published_single_proportion_limits():
    # Newcombe (1998), Stat Med 17:857, Table I, method 3: 81/263 -> 0.2553 to 0.3662.
    assert tuple(round(v, 4) for v in st.wilson(81, 263)) == (0.2553, 0.3662)
    with pytest.raises(ValueError, match="successes"):
        st.wilson(5, 3)


def test_newcombe_paired_reduces_to_square_and_add_when_uncorrelated():
    # A table with phi = 0 exactly (AD = BC): the paired interval is the unpaired one on the two margins.
    both, a_only, b_only, neither = 20, 20, 30, 30  # AD = 600 = BC
    n = 100
    expected = st.newcombe_unpaired_interval(both + a_only, n, both + b_only, n)
    for correction in (True, False):
        assert st.newcombe_paired_interval(both, a_only, b_only, neither, phi_correction=correction) == pytest.approx(
            expected
        )


def test_newcombe_paired_correlation_narrows_and_correction_widens():
    table = (60, 8, 4, 28)  # two strongly agreeing classifiers
    plain = st.newcombe_paired_interval(*table, phi_correction=False)
    corrected = st.newcombe_paired_interval(*table)
    unpaired = st.newcombe_unpaired_interval(68, 100, 64, 100)
    assert unpaired[1] - unpaired[0] > corrected[1] - corrected[0] > plain[1] - plain[0]
    assert plain[0] < 0.04 < plain[1]


def test_newcombe_paired_coverage_by_simulation():
    # Two correlated classifiers on n = 100 images; the true difference is 0.02. Method 10 aims at 95%.
    rng = np.random.default_rng(1)
    cells = np.array([0.62, 0.09, 0.07, 0.22])  # both, A only, B only, neither
    tables = rng.multinomial(100, cells, size=4000)
    hits = 0
    for t in tables:
        low, high = st.newcombe_paired_interval(*t)
        hits += low <= 0.02 <= high
    assert 0.93 <= hits / len(tables) <= 0.975


def test_paired_difference_and_mcnemar_against_binomial_arithmetic():
    a = np.array([1] * 30 + [1] * 1 + [0] * 9 + [0] * 10, bool)
    b = np.array([1] * 30 + [0] * 1 + [1] * 9 + [0] * 10, bool)
    result = st.paired_difference(a, b)
    assert (result["both"], result["a_only"], result["b_only"], result["neither"], result["n"]) == (30, 1, 9, 10, 50)
    assert result["difference"] == pytest.approx(-8 / 50)
    assert result["p"] == pytest.approx(2 * 11 / 1024)  # 2 * P(X <= 1), X ~ Bin(10, 1/2)
    assert result["ci"][0] < -8 / 50 < result["ci"][1] < 0
    assert st.mcnemar_p(0, 0) == 1.0


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(2)
    for size in (1, 3, 7):
        p = rng.random(size) ** 3
        np.testing.assert_allclose(st.holm(p), multipletests(p, method="holm")[1], atol=1e-12)
    assert st.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_mcnemar_family_rows():
    rng = np.random.default_rng(3)
    truth = rng.random(100) < 0.7
    correct = {"x": truth, "y": truth ^ (rng.random(100) < 0.3), "z": truth.copy()}
    correct["z"][:12] = True
    rows = st.mcnemar_family(correct, [("x", "y"), ("z", "x"), ("x", "x")])
    assert [r["A"] + r["B"] for r in rows] == ["xy", "zx", "xx"]
    assert rows[2]["direction"] == "equal" and rows[2]["p"] == 1.0 and rows[2]["p_holm"] == 1.0
    assert rows[1]["direction"] == "A more accurate" and rows[1]["b_only"] == 0
    assert all(r["p_holm"] >= r["p"] for r in rows)
    with pytest.raises(KeyError, match="no predictions for"):
        st.mcnemar_family(correct, [("x", "vgg19")])
    # the primary tested alone: the Holm family is the other pairs only (as the report's text defines it)
    alone = st.mcnemar_family(correct, [("x", "y"), ("z", "x"), ("x", "x")], tested_alone=("x", "y"))
    assert alone[0]["p_holm"] is None and alone[0]["family_size"] == 1
    assert alone[0]["reject_holm"] == (alone[0]["p"] < 0.05)
    assert [r["p_holm"] for r in alone[1:]] == pytest.approx(list(st.holm([r["p"] for r in alone[1:]])))
    assert [r["family_size"] for r in alone[1:]] == [2, 2]
    with pytest.raises(ValueError, match="not among the pairs"):
        st.mcnemar_family(correct, [("x", "y")], tested_alone=("y", "x"))
    assert st.primary_comparison("arch3_transfer")["B"] == "vgg19"
    with pytest.raises(ValueError):
        st.primary_comparison("vgg19")


def test_bootstraps_reproducible_and_sensible():
    rng = np.random.default_rng(4)
    a = rng.random(100) < 0.75
    b = rng.random(100) < 0.65
    first = bootstrap.paired_bootstrap(a, b, n_boot=4000, seed=7)
    assert first == bootstrap.paired_bootstrap(a, b, n_boot=4000, seed=7)
    assert first != bootstrap.paired_bootstrap(a, b, n_boot=4000, seed=8)
    assert first["difference"] == pytest.approx(a.mean() - b.mean())
    newcombe = st.paired_difference(a, b)["ci"]
    assert abs(first["ci"][0] - newcombe[0]) < 0.03 and abs(first["ci"][1] - newcombe[1]) < 0.03
    # Seeds that disagree a lot widen the hierarchical interval beyond the one-seed image bootstrap.
    seeds_a = np.stack([rng.random(100) < p for p in (0.55, 0.75, 0.9)])
    seeds_b = np.stack([rng.random(100) < 0.7 for _ in range(3)])
    h = bootstrap.hierarchical_bootstrap(seeds_a, seeds_b, n_boot=4000, seed=1)
    assert h == bootstrap.hierarchical_bootstrap(seeds_a, seeds_b, n_boot=4000, seed=1)
    assert h["difference"] == pytest.approx((seeds_a.astype(float) - seeds_b).mean())
    one = bootstrap.paired_bootstrap(seeds_a.mean(0), seeds_b.mean(0), n_boot=4000, seed=1)
    assert h["ci"][1] - h["ci"][0] > one["ci"][1] - one["ci"][0]
    with pytest.raises(ValueError, match="seeds, images"):
        bootstrap.hierarchical_bootstrap(a, b)


def test_hierarchical_bootstrap_in_blocks_equals_all_draws_at_once():
    """Blocks of 10,000 draws keep memory at (10,000, S, N): the same draws, the same interval, as one array."""
    rng = np.random.default_rng(5)
    a, b = rng.random((4, 60)) < 0.7, rng.random((4, 60)) < 0.6
    d = a.astype(float) - b
    draws = np.random.default_rng(3)
    s_idx, i_idx = draws.integers(0, 4, (25_000, 4)), draws.integers(0, 60, (25_000, 60))
    at_once = np.take_along_axis(d[s_idx], i_idx[:, None, :], axis=2).mean(axis=(1, 2))
    assert bootstrap.hierarchical_bootstrap(a, b, n_boot=25_000, seed=3)["ci"] == bootstrap._percentile(at_once, 0.95)


def test_endpoint_monte_carlo_error_shrinks_with_more_resamples():
    rng = np.random.default_rng(6)
    a, b = rng.random(80) < 0.7, rng.random(80) < 0.6
    few = bootstrap.endpoint_monte_carlo_sd(bootstrap.paired_bootstrap, a, b, n_boot=200, repeats=12)
    many = bootstrap.endpoint_monte_carlo_sd(bootstrap.paired_bootstrap, a, b, n_boot=20_000, repeats=12)
    assert few["repeats"] == 12 and few["n_boot"] == 200
    assert sum(many["sd"]) < sum(few["sd"])  # an endpoint's Monte Carlo error falls with the resamples
    assert all(low <= high for low, high in few["range"])
    first = bootstrap.paired_bootstrap(a, b, 200, 0)["ci"]
    assert few["range"][0][0] <= first[0] <= few["range"][0][1]  # the repeats include seed 0's interval


def test_paired_score_family_against_scipy_and_holm():
    rng = np.random.default_rng(9)
    base = rng.random(60)
    comparisons = [
        ("shifted", base + 0.05 + rng.normal(0, 0.02, 60), base),
        ("noise", base + rng.normal(0, 0.02, 60), base),
    ]
    rows = bootstrap.paired_score_family(comparisons + [("same", base, base)], n_boot=2000, seed=1)
    assert [r["comparison"] for r in rows] == ["shifted", "noise", "same"]
    assert rows[0]["p"] == pytest.approx(sps.wilcoxon(comparisons[0][1] - base).pvalue)
    assert [r["p_holm"] for r in rows] == pytest.approx(st.holm([r["p"] for r in rows]))
    assert (
        rows[0]["distinguishable"] and rows[0]["ci"][0] > 0 and rows[2]["p"] == 1.0 and not rows[2]["distinguishable"]
    )
    assert {r["family_size"] for r in rows} == {3}


def test_t_interval_matches_scipy():
    values = [0.68, 0.73, 0.73, 0.74, 0.73]
    result = st.t_interval(values)
    expected = sps.t.interval(0.95, 4, loc=np.mean(values), scale=sps.sem(values))
    np.testing.assert_allclose(result["ci"], expected, rtol=1e-12)
    assert result["sd"] == pytest.approx(np.std(values, ddof=1)) and result["n"] == 5
    with pytest.raises(ValueError, match="at least 2"):
        st.t_interval([0.7])
    rows = [{"model": "a", "train": 0.9, "val": v, "test": v} for v in (0.6, 0.7)]
    assert st.run_summary(rows)["a"]["val"]["mean"] == pytest.approx(0.65)


def test_ties_are_disclosed():
    picked = st.best_with_ties({"arch1": 0.72, "arch2": 0.70, "arch3": 0.72})
    assert picked["pick"] == "arch1" and picked["tied"] == ["arch1", "arch3"] and "tie" in picked["rule"]
    assert st.best_with_ties({"a": 0.1, "b": 0.2})["rule"] == "unique maximum"
    rows = [{"model": m, "seed": 1, "split_seed": 42, "val": v} for m, v in (("a", 0.5), ("b", 0.5), ("vgg19", 0.9))]
    assert st.picks_with_ties(rows)["split 42, seed 1"]["tied"] == ["a", "b"]
    rows += [
        {"model": "a", "seed": 2, "split_seed": 42, "val": 0.4},
        {"model": "b", "seed": 2, "split_seed": 42, "val": 0.3},
    ]
    lines = st.picks_text(st.picks_with_ties(rows)).splitlines()
    assert lines[0].startswith("split 42, seed 1: a  (tie between a, b") and lines[1] == "split 42, seed 2: a"


def test_against_reference_and_whole_counts():
    result = st.against_reference(69, 100, 0.56, 100, "test")
    assert result["difference"] == pytest.approx(0.13)
    assert result["ci"] == pytest.approx(st.newcombe_unpaired_interval(69, 100, 56, 100))
    assert result["role"].startswith("inferential")
    assert st.against_reference(37, 50, 0.58, 50, "val")["role"].startswith("descriptive")
    with pytest.raises(ValueError, match="not a whole number"):
        st.against_reference(200, 250, 0.8008, 250, "train")


def test_prediction_record_round_trip_and_byte_stability():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(6, 3))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    ids = [f"c/image_{i:04d}.jpg" for i in range(6)]
    y = np.array([0, 1, 2, 0, 1, 2])
    record = st.prediction_record(p, y, ids, ["a", "b", "c"], digits=4)
    again = st.prediction_record(p + 1e-9, y, ids, ["a", "b", "c"], digits=4)  # float noise of another machine
    assert json.dumps(record, sort_keys=True) == json.dumps(again, sort_keys=True)
    back = st.read_prediction_record(json.loads(json.dumps(record)))
    np.testing.assert_array_equal(back.y_pred, np.argmax(p, 1))
    np.testing.assert_allclose(back.probabilities, p, atol=5e-5)
    assert back.accuracy == pytest.approx(np.mean(np.argmax(p, 1) == y))
    with pytest.raises(ValueError, match="softmax"):
        st.prediction_record(logits, y, ids, ["a", "b", "c"])
    with pytest.raises(ValueError, match="must match"):
        st.prediction_record(p, y[:5], ids, ["a", "b", "c"])
    other = st.read_prediction_record({**record, "ids": ids[::-1]})
    with pytest.raises(ValueError, match="different images"):
        st.aligned_correct(back, other)
    with pytest.raises(ValueError, match="lacks"):
        st.read_prediction_record({"ids": ids})
    assert math.isclose(sum(record["probabilities"][0]), 1, abs_tol=2e-4)
