"""cnnlib.interpret.sanity: map similarity, layer randomisation, deletion / insertion curves."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlib import architectures, training
from cnnlib.interpret import sanity


def test_similarity_measures():
    rng = np.random.default_rng(0)
    a = rng.random((20, 20))
    assert sanity.spearman(a, a) == pytest.approx(1.0)
    assert sanity.spearman(a, -a) == pytest.approx(-1.0)
    assert sanity.spearman(a, np.zeros_like(a)) == 0.0
    assert sanity.ssim(a, a) == pytest.approx(1.0)
    assert sanity.ssim(a, 3 * a + 1) == pytest.approx(1.0)  # scaled to [0, 1] first
    assert sanity.ssim(a, rng.random((20, 20))) < 0.5
    both = sanity.compare_maps(np.stack([a, a]), np.stack([a, -a]))
    assert both["spearman"] == pytest.approx(0.0)


def _model(seed=0):
    training.set_seed(seed)
    return architectures.build_model("arch2", n_classes=3)


def test_randomize_layers_changes_only_named_layers_and_not_the_original():
    model = _model()
    before = {l.name: [w.copy() for w in l.get_weights()] for l in model.layers if l.weights}
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
    model = _model()
    x = np.random.default_rng(1).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    rows = sanity.cascading_randomization(model, x, np.array([0, 2]), sanity.gradcam_maps, ["logits", "conv3", "conv2"])
    assert [r["randomized_down_to"] for r in rows] == ["logits", "conv3", "conv2"]
    assert all(-1 <= r["spearman"] <= 1 and -1 <= r["ssim"] <= 1 for r in rows)


def test_deletion_insertion_end_points_and_area():
    model = _model()
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
    model = _model()
    x = np.random.default_rng(4).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    t = np.array([0, 1])
    for explain in (sanity.gradcam_maps, sanity.guided_backprop_maps, sanity.guided_gradcam_maps):
        maps = explain(model, x, t)
        assert maps.shape == (2, 224, 224) and np.all(maps >= 0)
