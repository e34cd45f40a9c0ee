"""The comparison's verdicts: summary rows, which method passes which check, paired method differences, and the
report's table and sentences that follow from them; the committed results recomputed from their records."""

import json

import numpy as np
import pytest

from cnnlib.interpret.checks import verdicts

pytestmark = pytest.mark.backends  # run once more on JAX by `make test-jax`


def _row(rand, rand_ci, deletion, del_ci, ins_ci, against=(0.0, [-0.02, 0.02], 0.9)):
    difference, ci, p_holm = against
    return {
        "randomization_spearman_abs": {"mean": rand, "ci": rand_ci, "n": 20},
        "calibration_spearman_abs": {"mean": rand - difference, "ci": None, "n": 20},
        "randomization_vs_calibration": {
            "difference": difference,
            "ci": ci,
            "p_holm": p_holm,
            "family_size": 3,
            "distinguishable": p_holm < 0.05,
        },
        "n_constant_randomized": 0,
        "n_constant_trained": 0,
        "n_constant_calibration": 0,
        "deletion_auc": {"mean": deletion, "ci": [deletion - 0.05, deletion + 0.05]},
        "insertion_auc": {"mean": 0.5, "ci": [0.45, 0.55]},
        "deletion_vs_random": {"difference": deletion - 0.5, "ci": del_ci},
        "insertion_vs_random": {"difference": 0.05, "ci": ins_ci},
    }


def test_report_table_and_takeaways_follow_the_numbers():
    from cnnlib.report import method_tables

    summary = {
        "A": _row(0.9, [0.85, 0.95], 0.40, [-0.12, -0.08], [0.02, 0.08]),  # survives randomisation
        "B": _row(0.1, [-0.1, 0.3], 0.35, [-0.18, -0.12], [0.03, 0.09], (-0.3, [-0.4, -0.2], 0.0004)),  # both
        "C": {  # sensitive, but not better than random
            **_row(0.2, [0.0, 0.4], 0.52, [-0.01, 0.05], [-0.03, 0.01], (-0.2, [-0.3, -0.1], 0.01)),
            "n_constant_randomized": 4,
        },
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
            "calibration_model": "toy trained with seed 2",
            "ig_completeness": {
                "steps": 8,
                "n": 100,
                "median_relative_error": 0.0234,
                "max_relative_error": 0.51,
                "n_within_1_percent": 31,
            },  # fmt: skip
            "verdicts": verdicts.decide(summary, ["A", "B", "C"]),
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
    assert shown["ig_completeness"] == (
        "Integrated Gradients with 8 steps: each map's attributions sum to its score change within 2.3% (median over "
        "the 100 images; largest 51.0%; 31 of 100 within 1%)."
    )
    first, second, third, fourth = shown["takeaways"]
    assert "on 20 images, seeds 1, 2, 3), the maps of B and C become less like the trained maps" in first
    assert "trained independently (toy trained with seed 2)" in first and "Holm over the 3 methods" in first
    assert "A stays as similar as that calibration or more" in first
    assert shown["rows"][1]["randomization_vs_calibration"] == "-0.30 [-0.40, -0.20], Holm p < 0.001"
    assert shown["rows"][2]["constant"] == "0 / 4 / 0"
    assert "A and B beat" in second and "C does not" in second
    # the reduced settings are stated in the sentence that concludes from them
    assert "On all 100 test images, with reduced settings (Score-CAM on each image's 8 largest-spread" in second
    assert "occlusion with 32-pixel patches at stride 16, Integrated Gradients with 16 steps" in second
    assert third == "Only B passes both checks under these settings."
    assert fourth.endswith("counted apart: C (0 trained, 4 re-initialised, 0 calibration).")
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
    rows = verdicts.method_differences({"curves": curves}, ["fast", "slow"], n_boot=2000, seed=0)
    assert [(r["a"], r["b"], r["curve"]) for r in rows] == [("fast", "slow", "deletion"), ("fast", "slow", "insertion")]
    deletion, insertion = rows
    assert deletion["difference"] < 0 and deletion["ci"][1] < 0 and deletion["distinguishable"]
    assert insertion["difference"] == 0 and insertion["p"] == 1.0 and not insertion["distinguishable"]
    assert all(r["family_size"] == 2 and r["p_holm"] >= r["p"] for r in rows)
    assert verdicts.method_differences({"curves": curves}, ["fast"]) == []


def test_committed_verdicts_and_method_differences_are_recomputed_from_the_records():
    from cnnlib import config

    results = json.loads((config.RESULTS_DIR / "method_comparison.json").read_text())
    record = json.loads((config.RESULTS_DIR / "method_comparison_per_image.json").read_text())["custom"]
    custom = results["custom"]
    assert custom["verdicts"] == verdicts.decide(custom["summary"], results["methods"])
    again = verdicts.method_differences(
        record, custom["verdicts"]["both"], results["n_boot"], results["provenance"]["seed"]
    )
    assert json.dumps(again, sort_keys=True) == json.dumps(custom["method_differences"], sort_keys=True)


def test_committed_summary_is_recomputed_from_the_committed_per_image_records():
    from cnnlib import config

    results = json.loads((config.RESULTS_DIR / "method_comparison.json").read_text())
    record = json.loads((config.RESULTS_DIR / "method_comparison_per_image.json").read_text())["custom"]
    stored = results["custom"]["summary"]
    again = verdicts.summarize(record, n_boot=results["n_boot"], seed=results["provenance"]["seed"])
    assert json.dumps(again, sort_keys=True) == json.dumps(stored, sort_keys=True)
    fractions = np.linspace(0, 1, record["steps"] + 1)
    for name in [*record["methods"], record["baseline"]]:  # the AUCs once more with plain NumPy
        for kind in ("deletion", "insertion"):
            auc = np.trapezoid(np.array(record["curves"][name][kind]), fractions, axis=1)
            assert stored[name][f"{kind}_auc"]["mean"] == pytest.approx(auc.mean(), abs=1e-12)
            assert len(auc) == results["custom"]["n_images"] == 100


def test_committed_integrated_gradients_completeness_from_its_per_image_errors():
    from cnnlib import config

    results = json.loads((config.RESULTS_DIR / "method_comparison.json").read_text())
    stored = results["custom"]["ig_completeness"]
    errors = np.array(stored["relative_error"])  # per image, rounded to 6 decimals
    assert len(errors) == stored["n"] == results["custom"]["n_images"]
    assert stored["median_relative_error"] == pytest.approx(np.median(errors), abs=1e-6)
    assert stored["max_relative_error"] == pytest.approx(errors.max(), abs=1e-6)
    assert stored["n_within_1_percent"] == int(np.sum(errors <= 0.01))
    assert stored["steps"] == results["custom"]["settings"]["ig_steps"]  # the steps the compared maps used
