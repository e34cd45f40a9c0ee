"""The method comparison: adapters' shapes, reproducibility, constant maps, summary vs per-image records."""

import json

import numpy as np
import pytest
import small_models

from cnnlib.interpret.checks import comparison, faithfulness, verdicts
from cnnlib.stats import bootstrap

pytestmark = pytest.mark.backends  # run once more on JAX by `make test-jax`

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
    assert json.dumps(verdicts.summarize(record, n_boot=200)) == json.dumps(out["summary"])
    # and by hand: mean insertion AUC, and the paired difference from the random baseline
    auc = faithfulness.auc_per_image(record["curves"]["Grad-CAM"]["insertion"])
    base = faithfulness.auc_per_image(record["curves"][record["baseline"]]["insertion"])
    row = out["summary"]["Grad-CAM"]
    assert row["insertion_auc"]["mean"] == pytest.approx(auc.mean())
    assert row["insertion_vs_random"] == bootstrap.paired_bootstrap(auc, base, 200, 0)
    full = np.array(record["cascade"]["Grad-CAM"]["spearman_abs"], float)[:, -1]  # (seeds, images), NaN: constant
    defined = ~np.isnan(full).all(axis=0)  # images whose map was constant for every seed are left out
    by_hand = np.mean(np.nanmean(full[:, defined], axis=0))
    assert row["randomization_spearman_abs"]["mean"] == pytest.approx(by_hand)


def test_randomisation_is_read_against_the_calibration_network():
    """A map that ignores the weights is as similar after re-initialisation as between two trained networks (it
    survives); a map that follows them is less similar than the calibration, here the model itself (sensitive)."""
    model, (x, t) = small_models.project("arch1", n_classes=3, image_size=SIZE), _data()
    x = np.concatenate([x, x[::-1], x[:, ::-1]])  # 12 images: enough for a Wilcoxon test in the Holm family
    t = np.concatenate([t, t[::-1], t])
    methods = {
        "Grad-CAM": comparison.adapters()["Grad-CAM"],
        "image": lambda m, x, t: np.asarray(x, np.float32).mean(axis=-1),  # the image's brightness: no weights
    }
    out = _run(model, x, t, methods, full_cascade=False, calibration_model=model)
    record = json.loads(json.dumps(out["per_image"]))
    assert np.allclose(np.array(record["calibration"]["image"]["spearman_abs"], float), 1.0)
    image, gradcam = out["summary"]["image"], out["summary"]["Grad-CAM"]
    assert image["calibration_spearman_abs"]["mean"] == pytest.approx(1.0)
    assert image["randomization_vs_calibration"]["difference"] == pytest.approx(0.0, abs=1e-12)
    assert not image["randomization_vs_calibration"]["distinguishable"]
    assert gradcam["randomization_vs_calibration"]["difference"] < 0
    assert gradcam["randomization_vs_calibration"]["family_size"] == 2
    assert gradcam["n_constant_calibration"] == gradcam["n_constant_trained"]
    assert json.dumps(verdicts.summarize(record, n_boot=200)) == json.dumps(out["summary"])
    decided = verdicts.decide(out["summary"], list(methods))
    assert decided["survive"] == ["image"] and decided["sensitive"] == ["Grad-CAM"]
    # without a calibration nothing is decided about randomisation (no fixed threshold stands in for it)
    plain = _run(model, x, t, methods, full_cascade=False)
    assert "calibration" not in plain["per_image"]
    assert verdicts.decide(plain["summary"], list(methods))["sensitive"] == []


def test_integrated_gradients_completeness_explains_each_images_own_target():
    from cnnlib import interpret

    model, (x, t) = small_models.project("arch1", n_classes=3, image_size=SIZE), _data()
    out = comparison.integrated_gradients_completeness(model, x, t, steps=4)
    assert out["n"] == 4 and out["steps"] == 4 and len(out["relative_error"]) == 4
    for i in range(len(x)):  # one image at a time, its own target: the same error
        attributions = interpret.integrated_gradients(model, x[i : i + 1], int(t[i]), steps=4)
        alone = interpret.completeness(model, x[i : i + 1], attributions, int(t[i])).relative_error[0]
        assert out["relative_error"][i] == pytest.approx(alone, rel=1e-4, abs=1e-6)
    errors = np.array(out["relative_error"])
    assert out["n_within_1_percent"] == int(np.sum(errors <= 0.01))
    assert out["max_relative_error"] == pytest.approx(errors.max(), abs=1e-6)
    assert out["median_relative_error"] == pytest.approx(np.median(errors), abs=1e-6)


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
