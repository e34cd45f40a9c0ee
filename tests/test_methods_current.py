"""Every new method follows the model's weights: after set_weights and after fit (as tests/test_any_model.py)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnnlib import architectures, interpret, training

METHODS = {
    "grad_cam_plus_plus": lambda m, x: interpret.grad_cam_plus_plus(m, x, [0, 2]),
    "hires_cam": lambda m, x: interpret.hires_cam(m, x, 1, upsample=None, relu=False),
    "layer_cam": lambda m, x: interpret.layer_cam(m, x, 1, "conv2"),
    "score_cam": lambda m, x: interpret.score_cam(m, x, [0, 3], channels=6, upsample=None),
    "saliency": lambda m, x: interpret.saliency(m, x, 1),
    "smooth_grad": lambda m, x: interpret.smooth_grad(m, x, 1, samples=3),
    "integrated_gradients": lambda m, x: interpret.integrated_gradients(m, x, 1, steps=6),
    "occlusion": lambda m, x: interpret.occlusion(m, x, 1, patch=56, stride=56),
    "activation_maximisation": lambda m, x: interpret.activation_maximisation(m, 1, steps=4)[0],
}


@pytest.fixture(scope="module")
def nets():
    """Three arch2 networks built once (the views and compiled functions are then reused across methods)."""
    training.set_seed(0)
    model = architectures.build_model("arch2")
    start = model.get_weights()
    training.set_seed(1)
    other = architectures.build_model("arch2")
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    return model, start, other, architectures.build_model("arch2")


@pytest.mark.parametrize("method", list(METHODS))
def test_every_new_method_follows_set_weights_and_fit(method, nets):
    explain = METHODS[method]
    model, start, other, fresh = nets
    model.set_weights(start)
    x = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    before = explain(model, x)
    model.set_weights(other.get_weights())
    after = explain(model, x)
    np.testing.assert_allclose(after, explain(other, x), rtol=1e-5, atol=1e-6 * max(np.abs(after).max(), 1e-30))
    assert not np.allclose(before, after)
    # a short fit changes the weights in place: maps must equal another model carrying them
    model.fit(x, np.array([0, 3]), epochs=1, verbose=0)
    fresh.set_weights(model.get_weights())
    ours = explain(model, x)
    np.testing.assert_allclose(ours, explain(fresh, x), rtol=1e-4, atol=1e-5 * max(np.abs(ours).max(), 1e-30))
    assert not np.allclose(ours, after)
