"""The method comparison: adapters' shapes, reproducibility, constant maps, summary vs per-image records."""

import json

import numpy as np
import pytest
import small_models

from cnnlib.interpret.checks import comparison, faithfulness
from cnnlib.stats import bootstrap

SIZE = 96


def _data():
    x = np.random.default_rng(3).uniform(0, 255, (4, SIZE, SIZE, 3)).astype(np.float32)
    return x, np.array([0, 1, 2, 0])


CHEAP = dict(smooth_samples=3, ig_steps=4, scorecam_channels=4, occlusion_patch=32, occlusion_stride=32)


def test_every_adapter_gives_one_map_per_image_on_the_input_grid():
    model, (x, t) = small_models.project("arch1", n_classes=3, image_size=SIZE), _data()
    methods = comparison.adapters(**CHEAP)
    assert tuple(methods) == comparison.METHOD_NAMES
    maps, ms = comparison.time_methods(model, x, t, methods)
    for name, m in maps.items():
        assert m.shape == (4, SIZE, SIZE), name
        assert np.isfinite(m).all() and ms[name] > 0, name
    for name in ("Grad-CAM", "Grad-CAM++", "HiResCAM", "Score-CAM", "LayerCAM", "saliency", "guided backprop"):
        assert maps[name].min() >= 0, name  # non-negative maps; occlusion keeps its sign (a score drop)


def test_maps_untimed_equal_timed_bit_for_bit():
    model, (x, t) = small_models.project("arch1", n_classes=3, image_size=SIZE), _data()
    methods = comparison.adapters(**CHEAP)
    timed, _ = comparison.time_methods(model, x, t, methods)
    untimed = comparison.method_maps(model, x, t, methods)
    assert list(untimed) == list(methods)
    for name in methods:
        assert untimed[name].dtype == np.float32 and untimed[name].tobytes() == timed[name].tobytes(), name


@pytest.mark.parametrize("measure", [comparison.time_methods, comparison.method_maps])
def test_bad_method_shape_is_reported_by_name(measure):
    model, (x, t) = small_models.project("arch1", n_classes=3, image_size=SIZE), _data()
    with pytest.raises(ValueError, match="'flat'"):
        measure(model, x, t, {"flat": lambda m, x, t: np.zeros((len(x), 3))})


def _run(model, x, t, methods, **kwargs):
    return comparison.compare_methods(
        model, x, t, methods, ["logits", "conv2"], seeds=[1, 2, 3], steps=4, random_draws=10, n_boot=200, **kwargs
    )


def test_compare_methods_is_reproducible_counts_constant_maps_and_summary_matches_records():
    model, (x, t) = small_models.project("arch1", n_classes=3, image_size=SIZE), _data()
    methods = {
        "Grad-CAM": comparison.adapters()["Grad-CAM"],
        "constant": lambda m, x, t: np.ones(np.shape(x)[:3], np.float32),
    }
    out = _run(model, x, t, methods)
    again = _run(model, x, t, methods)
    assert json.dumps(out["per_image"]) == json.dumps(again["per_image"])  # timings are kept apart
    assert json.dumps(out["summary"]) == json.dumps(again["summary"]) and set(out) == {"summary", "per_image"}
    record = json.loads(json.dumps(out["per_image"]))  # JSON-able, and what a reader of the results file sees
    assert np.array(record["cascade"]["Grad-CAM"]["spearman"], float).shape == (3, 2, 4)
    assert len(record["curves"]["constant"]["deletion"]) == 4 and len(record["curves"]["constant"]["deletion"][0]) == 5
    const = out["summary"]["constant"]
    assert const["n_constant_trained"] == 4 and const["n_constant_randomized"] == 12  # 3 seeds x 4 images
    assert const["randomization_spearman_abs"]["mean"] is None and const["randomization_spearman_abs"]["n"] == 0
    # the summary is a function of the stored records alone
    assert json.dumps(comparison.summarize(record, n_boot=200)) == json.dumps(out["summary"])
    # and by hand: mean insertion AUC, and the paired difference from the random baseline
    auc = faithfulness.auc_per_image(record["curves"]["Grad-CAM"]["insertion"])
    base = faithfulness.auc_per_image(record["curves"][record["baseline"]]["insertion"])
    row = out["summary"]["Grad-CAM"]
    assert row["insertion_auc"]["mean"] == pytest.approx(auc.mean())
    assert row["insertion_vs_random"] == bootstrap.paired_bootstrap(auc, base, 200, 0)
    full = np.array(record["cascade"]["Grad-CAM"]["spearman_abs"], float)[:, -1]
    assert row["randomization_spearman_abs"]["mean"] == pytest.approx(np.mean(np.nanmean(full, axis=0)))


def test_full_reinit_only_equals_the_last_cascade_step():
    model, (x, t) = small_models.project("arch1", n_classes=3, image_size=SIZE), _data()
    methods = {"Grad-CAM": comparison.adapters()["Grad-CAM"], "saliency": comparison.adapters()["saliency"]}
    every = _run(model, x, t, methods)
    last = _run(model, x, t, methods, full_cascade=False, cascade_images=[0, 1, 2, 3])
    for name in methods:
        for key in ("spearman", "spearman_abs", "ssim"):
            np.testing.assert_array_equal(
                np.array(every["per_image"]["cascade"][name][key], float)[:, -1:],
                np.array(last["per_image"]["cascade"][name][key], float),
            )
    assert last["per_image"]["cascade_steps"] == "full re-initialisation only"


def test_too_few_random_draws_is_refused():
    model, (x, t) = small_models.project("arch1", n_classes=3, image_size=SIZE), _data()
    with pytest.raises(ValueError, match="at least 10 draws"):
        comparison.compare_methods(model, x, t, {}, ["logits"], random_draws=3)


def _row(rand, rand_ci, deletion, del_ci, ins_ci):
    return {
        "randomization_spearman_abs": {"mean": rand, "ci": rand_ci, "n": 20},
        "n_constant_randomized": 0,
        "n_constant_trained": 0,
        "deletion_auc": {"mean": deletion, "ci": [deletion - 0.05, deletion + 0.05]},
        "insertion_auc": {"mean": 0.5, "ci": [0.45, 0.55]},
        "deletion_vs_random": {"difference": deletion - 0.5, "ci": del_ci},
        "insertion_vs_random": {"difference": 0.05, "ci": ins_ci},
    }


def test_report_table_and_takeaways_follow_the_numbers():
    from cnnlib.report import method_tables

    summary = {
        "A": _row(0.9, [0.85, 0.95], 0.40, [-0.12, -0.08], [0.02, 0.08]),  # survives randomisation
        "B": _row(0.1, [-0.1, 0.3], 0.35, [-0.18, -0.12], [0.03, 0.09]),  # passes both
        "C": {**_row(0.2, [0.0, 0.4], 0.52, [-0.01, 0.05], [-0.03, 0.01]), "n_constant_randomized": 4},  # not better
        "random": {"deletion_auc": {"mean": 0.5, "ci": [0.45, 0.55]}, "insertion_auc": {"mean": 0.45, "ci": None}},
    }
    results = {
        "methods": ["A", "B", "C"],
        "custom": {
            "model": "toy",
            "weights": "trained",
            "n_images": 100,
            "cascade_images": 20,
            "seeds": [1, 2, 3],
            "layers_reinitialised": ["logits", "conv1"],
            "steps": 10,
            "random_draws": 10,
            "baseline": "random",
            "settings": {
                "smooth_samples": 5,
                "ig_steps": 16,
                "scorecam_channels": 8,
                "occlusion_patch": 32,
                "occlusion_stride": 16,
            },
            "summary": summary,
            "randomization_threshold": 0.5,
            "verdicts": comparison.verdicts(summary, ["A", "B", "C"]),
            "method_differences": [],
        },
        "vgg19": {"weights": "RANDOM INIT", "note": "time only"},
    }
    benchmarks = {"methods": {"models": {"VGG19": {"methods": {"grad_cam": {"ours_ms": 500.0}}, "work": {}}}}}
    shown = method_tables.method_comparison_tables(results, benchmarks)
    assert [r["method"] for r in shown["rows"]] == ["A", "B", "C"]
    assert shown["rows"][1]["randomization"] == "0.10 [-0.10, 0.30]" and shown["rows"][2]["vgg19_ms"] == "-"
    renamed = {
        **results,
        "methods": ["Grad-CAM"],
        "custom": {**results["custom"], "summary": {"Grad-CAM": summary["A"], "random": summary["random"]}},
    }
    assert method_tables.method_comparison_tables(renamed, benchmarks)["rows"][0]["vgg19_ms"] == "500"
    assert shown["best_deletion"] == "B" and shown["least_randomization"] == "B"
    first, second, third, fourth = shown["takeaways"]
    assert "on 20 images, seeds 1, 2, 3), A keeps" in first and "not calibrated" in first
    assert "A and B beat" in second and "C does not" in second
    # the reduced settings are stated in the sentence that concludes from them
    assert "On all 100 test images, with reduced settings (Score-CAM on each image's 8 largest-spread" in second
    assert "occlusion with 32-pixel patches at stride 16, Integrated Gradients with 16 steps" in second
    assert third == "Only B passes both checks under these settings."
    assert fourth.endswith("counted apart: C (0 trained, 4 re-initialised).")
    assert results["custom"]["verdicts"] == {
        "survive": ["A"],
        "sensitive": ["B", "C"],
        "beat": ["A", "B"],
        "both": ["B"],
    }
    # two methods pass both: the sentence gives their paired differences and the verdict from the Holm family
    both = {**results["custom"]["verdicts"], "both": ["A", "B"]}
    rows = [
        {"a": "A", "b": "B", "curve": "deletion", "difference": -0.05, "ci": [-0.08, -0.02], "p_holm": 0.004,
         "family_size": 2, "distinguishable": True},
        {"a": "A", "b": "B", "curve": "insertion", "difference": 0.01, "ci": [-0.02, 0.04], "p_holm": 0.41,
         "family_size": 2, "distinguishable": False},
    ]  # fmt: skip
    paired = {**results, "custom": {**results["custom"], "verdicts": both, "method_differences": rows}}
    third = method_tables.method_comparison_tables(paired, benchmarks)["takeaways"][2]
    assert third.startswith("Only A and B pass both checks under these settings.")
    assert "A - B deletion AUC -0.050 [-0.080, -0.020], Holm p = 0.004" in third
    assert (
        "Holm over the 2 comparisons): A beats B on deletion; the other 1 comparison is not distinguishable." in third
    )
    rows[1].update(distinguishable=True, p_holm=0.0001)
    third = method_tables.method_comparison_tables(paired, benchmarks)["takeaways"][2]
    assert "Holm p < 0.001" in third and third.endswith("comparisons): A beats B on deletion and on insertion.")
    for r in rows:
        r["distinguishable"] = False
    third = method_tables.method_comparison_tables(paired, benchmarks)["takeaways"][2]
    assert third.endswith("no difference is distinguishable, so these data do not rank them.")


def test_method_differences_are_one_holm_family_of_paired_auc_differences():
    rng = np.random.default_rng(8)
    steps = np.linspace(1, 0, 6)
    flat = np.full((40, 6), 0.1)  # insertion: the same curve for both methods
    curves = {  # "fast" loses the class evidence sooner on deletion than "slow"
        "fast": {"deletion": steps**3 * rng.uniform(0.8, 1, (40, 1)), "insertion": flat},
        "slow": {"deletion": steps**0.5 * rng.uniform(0.8, 1, (40, 1)), "insertion": flat},
    }
    rows = comparison.method_differences({"curves": curves}, ["fast", "slow"], n_boot=2000, seed=0)
    assert [(r["a"], r["b"], r["curve"]) for r in rows] == [("fast", "slow", "deletion"), ("fast", "slow", "insertion")]
    deletion, insertion = rows
    assert deletion["difference"] < 0 and deletion["ci"][1] < 0 and deletion["distinguishable"]
    assert insertion["difference"] == 0 and insertion["p"] == 1.0 and not insertion["distinguishable"]
    assert all(r["family_size"] == 2 and r["p_holm"] >= r["p"] for r in rows)
    assert comparison.method_differences({"curves": curves}, ["fast"]) == []


def test_committed_verdicts_and_method_differences_are_recomputed_from_the_records():
    from cnnlib import config

    results = json.loads((config.RESULTS_DIR / "method_comparison.json").read_text())
    record = json.loads((config.RESULTS_DIR / "method_comparison_per_image.json").read_text())["custom"]
    custom = results["custom"]
    assert custom["verdicts"] == comparison.verdicts(custom["summary"], results["methods"])
    again = comparison.method_differences(
        record, custom["verdicts"]["both"], results["n_boot"], results["provenance"]["seed"]
    )
    assert json.dumps(again, sort_keys=True) == json.dumps(custom["method_differences"], sort_keys=True)


def test_committed_summary_is_recomputed_from_the_committed_per_image_records():
    from cnnlib import config

    results = json.loads((config.RESULTS_DIR / "method_comparison.json").read_text())
    record = json.loads((config.RESULTS_DIR / "method_comparison_per_image.json").read_text())["custom"]
    stored = results["custom"]["summary"]
    again = comparison.summarize(record, n_boot=results["n_boot"], seed=results["provenance"]["seed"])
    assert json.dumps(again, sort_keys=True) == json.dumps(stored, sort_keys=True)
    fractions = np.linspace(0, 1, record["steps"] + 1)
    for name in [*record["methods"], record["baseline"]]:  # the AUCs once more with plain NumPy
        for kind in ("deletion", "insertion"):
            auc = np.trapezoid(np.array(record["curves"][name][kind]), fractions, axis=1)
            assert stored[name][f"{kind}_auc"]["mean"] == pytest.approx(auc.mean(), abs=1e-12)
            assert len(auc) == results["custom"]["n_images"] == 100


def test_gradient_heat_maps_one_target_at_a_time_equal_all_targets_at_once():
    """The adapters compute one target at a time (less memory): the same bits as every target in one call."""
    from cnnlib.interpret.gradients import integrated_gradients, saliency, smooth_grad, to_heatmap

    model, (x, t) = small_models.project("arch1", n_classes=3, image_size=SIZE), _data()
    methods = comparison.adapters(**CHEAP, seed=4)
    calls = {
        "saliency": lambda: saliency(model, x, [0, 1, 2]),
        "SmoothGrad": lambda: smooth_grad(model, x, [0, 1, 2], samples=CHEAP["smooth_samples"], seed=4),
        "Integrated Gradients": lambda: integrated_gradients(model, x, [0, 1, 2], steps=CHEAP["ig_steps"]),
    }
    for name, every_target in calls.items():
        expected = to_heatmap(every_target()[np.arange(len(t)), t], "max_abs")
        np.testing.assert_array_equal(methods[name](model, x, t), expected, err_msg=name)
