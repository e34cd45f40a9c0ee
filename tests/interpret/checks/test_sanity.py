"""cnnlib.interpret.checks.sanity: map similarity, layer randomisation, deletion / insertion curves."""

from __future__ import annotations

import numpy as np
import pytest
import small_models
from scipy import stats as sps

from cnnlib.interpret.checks import sanity

pytestmark = pytest.mark.backends  # run once more on JAX by `make test-jax`


def test_similarity_measures():
    rng = np.random.default_rng(0)
    a = rng.random((20, 20))
    assert sanity.spearman(a, a) == pytest.approx(1.0)
    assert sanity.spearman(a, -a) == pytest.approx(-1.0)
    assert np.isnan(sanity.spearman(a, np.zeros_like(a)))  # no ranking: not "decorrelated"
    assert sanity.ssim(a, a) == pytest.approx(1.0)
    assert sanity.ssim(a, 3 * a + 1) == pytest.approx(1.0)  # scaled to [0, 1] first
    assert sanity.ssim(a, rng.random((20, 20))) < 0.5
    both = sanity.compare_maps(np.stack([a, a]), np.stack([a, -a]))
    assert both["spearman"] == pytest.approx(0.0) and both["spearman_abs"] == pytest.approx(1.0)


def test_randomize_layers_changes_only_named_layers_and_not_the_original():
    model = small_models.project("arch2", n_classes=3)
    before = {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers if layer.weights}
    copy = sanity.randomize_layers(model, ["logits", "conv3"], seed=1)
    for layer in model.layers:
        if layer.weights:
            for w0, w1 in zip(before[layer.name], layer.get_weights()):
                np.testing.assert_array_equal(w0, w1)  # original untouched
            changed = not np.array_equal(before[layer.name][0], copy.get_layer(layer.name).get_weights()[0])
            assert changed == (layer.name in ("logits", "conv3")), layer.name
    np.random.default_rng(5).random(10)  # whatever runs in between must not matter
    __import__("random").random()
    again = sanity.randomize_layers(model, ["logits", "conv3"], seed=1)
    for name in ("logits", "conv3"):
        np.testing.assert_array_equal(copy.get_layer(name).get_weights()[0], again.get_layer(name).get_weights()[0])


def test_cascading_randomization_rows():
    model = small_models.project("arch2", n_classes=3)
    x = np.random.default_rng(1).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    rows = sanity.cascading_randomization(model, x, np.array([0, 2]), sanity.gradcam_maps, ["logits", "conv3", "conv2"])
    assert [r["randomized_down_to"] for r in rows] == ["logits", "conv3", "conv2"]
    for r in rows:  # maps that went constant (all-zero Grad-CAM) are counted, not averaged
        assert r["n_compared"] + r["n_constant_randomized"] + r["n_constant_trained"] >= 2
        if r["n_compared"] == 0:
            assert r["spearman"] is None and r["ssim"] is None
        else:
            assert -1 <= r["spearman"] <= 1 and -1 <= r["ssim"] <= 1


def test_deletion_insertion_end_points_and_area():
    model = small_models.project("arch2", n_classes=3)
    rng = np.random.default_rng(2)
    images = rng.uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    maps = sanity.random_maps(3)(model, images, None)
    targets = np.array([1, 2])
    curves = sanity.deletion_insertion(model, images, maps, targets, steps=4)
    full = model.predict(images, verbose=0)[[0, 1], targets]
    np.testing.assert_allclose(curves["deletion"][:, 0], full, rtol=1e-5)  # nothing deleted yet
    np.testing.assert_allclose(curves["insertion"][:, -1], full, rtol=1e-5)  # everything restored
    np.testing.assert_allclose(curves["deletion"][:, -1], curves["insertion"][:, 0], rtol=1e-5)  # both fully blurred
    assert sanity.area_under(np.full((3, 11), 0.5)) == pytest.approx(0.5)
    assert sanity.area_under(np.tile(np.linspace(0, 1, 11), (2, 1))) == pytest.approx(0.5)


def test_explain_functions_shapes():
    model = small_models.project("arch2", n_classes=3)
    x = np.random.default_rng(4).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    t = np.array([0, 1])
    for explain in (sanity.gradcam_maps, sanity.guided_backprop_maps, sanity.guided_gradcam_maps):
        maps = explain(model, x, t)
        assert maps.shape == (2, 224, 224) and np.all(maps >= 0)


def _ssim_by_windows(a, b, window=7):
    """SSIM written out window by window (Wang et al. 2004, population moments, symmetric border padding)."""

    def unit(m):
        return (m - m.min()) / (np.ptp(m) or 1.0)

    a, b, r = unit(a), unit(b), window // 2
    pa, pb = np.pad(a, r, mode="symmetric"), np.pad(b, r, mode="symmetric")
    c1, c2, values = 0.01**2, 0.03**2, []
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            x, y = pa[i : i + window, j : j + window].ravel(), pb[i : i + window, j : j + window].ravel()
            mx, my = x.mean(), y.mean()
            vx, vy, cxy = ((x - mx) ** 2).mean(), ((y - my) ** 2).mean(), ((x - mx) * (y - my)).mean()
            values.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_ssim_equals_the_window_by_window_formula():
    rng = np.random.default_rng(6)
    a = rng.random((12, 15))
    b = 0.5 * a + rng.random((12, 15))
    assert sanity.ssim(a, b) == pytest.approx(_ssim_by_windows(a, b), rel=1e-9)
    c = np.zeros((12, 15))
    c[3:9, 4:11] = 1.0  # a block: large local variances, borders matter
    assert sanity.ssim(c, a) == pytest.approx(_ssim_by_windows(c, a), rel=1e-9)


def test_constant_maps_are_counted_not_averaged():
    rng = np.random.default_rng(7)
    reference = rng.random((4, 10, 10))
    other = reference + 0.1 * rng.random((4, 10, 10))
    other[1] = 0.0  # an all-zero Grad-CAM map after randomisation
    other[2] = 1e-9 * rng.random((10, 10)) + 3.0  # constant up to float noise
    assert sanity.is_constant(other[1]) and sanity.is_constant(other[2]) and not sanity.is_constant(other[0])
    per_image = sanity.map_similarity(reference, other)
    assert np.isnan(per_image["spearman"][[1, 2]]).all() and per_image["constant_other"].tolist() == [
        False,
        True,
        True,
        False,
    ]
    summary = sanity.summarize_similarity(per_image)
    assert (summary["n_images"], summary["n_compared"], summary["n_constant_other"]) == (4, 2, 2)
    assert summary["spearman"] == pytest.approx(np.mean(per_image["spearman"][[0, 3]]))
    assert summary["spearman"] > 0.8  # the two compared images, not diluted by two zeros
    record = sanity.similarity_record(per_image)
    assert record["spearman"][1] is None and record["constant_other"][1] is True
    none = sanity.summarize_similarity(sanity.map_similarity(reference[:1], np.zeros((1, 10, 10))))
    assert none["spearman"] is None and none["n_compared"] == 0


def test_cascade_over_seeds_shapes_reproducibility_and_signed_maps():
    model = small_models.project("arch2", n_classes=3)
    x = np.random.default_rng(8).uniform(0, 255, (3, 224, 224, 3)).astype(np.float32)
    t = np.array([0, 1, 2])
    methods = {"Grad-CAM": sanity.gradcam_maps, "signed": sanity.guided_backprop_signed_maps}
    layers = ["logits", "conv3"]
    out = sanity.cascade_over_seeds(model, x, t, methods, layers, seeds=[1, 2, 3])
    assert out["Grad-CAM"]["spearman"].shape == (3, 2, 3) and out["signed"]["constant_trained"].shape == (3,)
    again = sanity.cascade_over_seeds(model, x, t, methods, layers, seeds=[1, 2, 3])
    np.testing.assert_array_equal(out["signed"]["spearman"], again["signed"]["spearman"])
    assert not np.allclose(out["signed"]["spearman"][0], out["signed"]["spearman"][1])  # seeds differ
    assert not np.allclose(np.nan_to_num(out["signed"]["spearman"]), np.nan_to_num(out["signed"]["spearman_abs"]))
    rows = sanity.cascade_summary(out["Grad-CAM"], layers)
    assert [r["randomized_down_to"] for r in rows] == layers and rows[0]["n_seeds"] == 3
    assert rows[0]["n_compared"] + rows[0]["n_constant_randomized"] <= 9
    same = sanity.model_similarity(model, model, x, t, {"signed": sanity.guided_backprop_signed_maps})
    assert same["signed"]["spearman"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="distinct"):
        sanity.cascade_over_seeds(model, x, t, methods, layers, seeds=[1, 1])


def test_vectorised_spearman_equals_scipy_per_image():
    rng = np.random.default_rng(9)
    a = rng.normal(size=(5, 16, 16))
    b = a + rng.normal(size=(5, 16, 16))
    b[3] = np.round(b[3])  # many ties
    per_image = sanity.map_similarity(a, b)
    for i in range(5):
        assert per_image["spearman"][i] == pytest.approx(sps.spearmanr(a[i].ravel(), b[i].ravel()).statistic, abs=1e-12)
        assert per_image["spearman_abs"][i] == pytest.approx(
            sps.spearmanr(np.abs(a[i]).ravel(), np.abs(b[i]).ravel()).statistic, abs=1e-12
        )
        assert per_image["ssim"][i] == pytest.approx(sanity.ssim(a[i], b[i]))
