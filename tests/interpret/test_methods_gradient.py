"""Vanilla gradient and SmoothGrad against tf-keras-vis; Integrated Gradients' completeness.

tf-keras-vis's Saliency by default takes |gradient|, the max over colour channels and a min-max
normalisation; with ``gradient_modifier=None, keepdims=True, normalize_map=False`` it returns the
plain (mean) gradient, which is what ours return (``to_heatmap`` does the display reduction).
Its SmoothGrad draws noise with ``np.random.normal(0, sigma, (samples, N, H, W, C))``, sigma =
noise x (max - min) per image, the same convention as ours; the tests hand it our standard normals
so both see the same noise. Tolerance: 1e-5 x the largest value (float32 round-off).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import small_models

from cnnlib import backend, interpret
from cnnlib.models import architectures, training

TOL = 1e-5


def _x(n=2, seed=0, size=16, high=1.0):
    return np.random.default_rng(seed).uniform(-high, high, (n, size, size, 3)).astype(np.float32)


def _logits(model, x, head="head"):
    kernel, bias = model.get_layer(head).get_weights()
    return backend.to_numpy(keras.Model(model.input, model.get_layer(head).input)(x)) @ kernel + bias


def _close(ours, theirs, tol=TOL):
    theirs = np.asarray(theirs)
    scale = max(np.abs(theirs).max(), 1e-30)
    assert np.abs(ours - theirs).max() <= tol * scale, f"relative error {np.abs(ours - theirs).max() / scale:.2e}"


def _peer(model):
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

    return Saliency(model, model_modifier=ReplaceToLinear(), clone=True)


def test_saliency_equals_tf_keras_vis():
    from tf_keras_vis.utils.scores import CategoricalScore

    model, x = small_models.flat_cnn(), _x()
    theirs = _peer(model)(CategoricalScore([1, 1]), x, gradient_modifier=None, keepdims=True, normalize_map=False)
    _close(interpret.saliency(model, x, 1), theirs)
    both = interpret.saliency(model, x, [0, 1])
    assert both.shape == (2, 2, 16, 16, 3)
    _close(both[:, 1], theirs)
    # their default display: max over colours of |gradient|, min-max normalised per image
    default = np.asarray(_peer(model)(CategoricalScore([1, 1]), x))
    heat = interpret.to_heatmap(interpret.saliency(model, x, 1))
    low, high = heat.min(axis=(1, 2), keepdims=True), heat.max(axis=(1, 2), keepdims=True)
    _close((heat - low) / (high - low), default, tol=1e-4)


def test_smooth_grad_equals_tf_keras_vis_on_the_same_noise(monkeypatch):
    from tf_keras_vis.utils.scores import CategoricalScore

    model, x = small_models.flat_cnn(1), _x(seed=1)
    samples, noise, seed = 6, 0.2, 3
    ours = interpret.smooth_grad(model, x, 2, samples=samples, noise=noise, seed=seed, batch_size=5)
    standard = np.random.default_rng(seed).standard_normal((samples, *x.shape))

    def same_noise(loc, scale, size):
        assert tuple(size) == standard.shape
        return loc + np.asarray(scale) * standard

    monkeypatch.setattr(np.random, "normal", same_noise)
    theirs = _peer(model)(
        CategoricalScore([2, 2]),
        x,
        smooth_samples=samples,
        smooth_noise=noise,
        gradient_modifier=None,
        keepdims=True,
        normalize_map=False,
    )
    _close(ours, theirs, tol=1e-4)  # noisy inputs are formed in float64 there, float32 here
    assert not np.allclose(ours, interpret.saliency(model, x, 2))
    np.testing.assert_array_equal(ours, interpret.smooth_grad(model, x, 2, samples=samples, noise=noise, seed=seed))
    assert not np.allclose(ours, interpret.smooth_grad(model, x, 2, samples=samples, noise=noise, seed=seed + 1))


def test_integrated_gradients_completeness_at_default_steps():
    """sum(attributions) = y_c(x) - y_c(baseline) within 1% at the default 64 steps (midpoint rule), on the
    project's arch3 at 224 px from a black baseline, scores computed independently. Random biases: with the
    zero biases of a fresh network, ReLU layers make y positively homogeneous, y(a x) = a y(x), so the
    gradient is constant along the path and any rule is exact, which would prove nothing.

    On a 16-px network from a -0.5 baseline the path crosses few, coarse ReLU kinks (the rule's error is
    first order there): 64 steps leave up to 1.5%, so that case is checked for convergence instead."""
    training.set_seed(0)
    model = architectures.build_model("arch3")
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if len(layer.get_weights()) == 2:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.05, bias.shape).astype(np.float32)])
    x = np.random.default_rng(0).uniform(0, 255, (3, 224, 224, 3)).astype(np.float32)
    attributions = interpret.integrated_gradients(model, x, 1)
    change = _logits(model, x, "logits")[:, 1] - _logits(model, np.zeros_like(x), "logits")[:, 1]
    total = attributions.reshape(len(x), -1).sum(axis=1)
    assert np.all(np.abs(total - change) <= 0.01 * np.abs(change)), (total, change)
    np.testing.assert_allclose(
        interpret.class_scores(model, x, 1), _logits(model, x, "logits")[:, 1], rtol=1e-5, atol=1e-5
    )

    small, images = small_models.flat_cnn(2), _x(4, seed=2)
    change = _logits(small, images)[:, 1] - _logits(small, np.full_like(images, -0.5))[:, 1]
    errors = [
        np.abs(
            interpret.integrated_gradients(small, images, 1, baseline=-0.5, steps=steps).reshape(4, -1).sum(axis=1)
            - change
        )
        / np.abs(change)
        for steps in (16, 512)
    ]
    assert errors[1].max() <= 0.01 and errors[1].mean() < errors[0].mean() / 4, errors


def test_completeness_is_the_sum_against_the_independently_computed_score_change():
    small, images = small_models.flat_cnn(2), _x(3, seed=7)
    attributions = interpret.integrated_gradients(small, images, 1, baseline=-0.5, steps=16)
    check = interpret.completeness(small, images, attributions, 1, baseline=-0.5)
    change = _logits(small, images)[:, 1] - _logits(small, np.full_like(images, -0.5))[:, 1]
    np.testing.assert_allclose(check.changes, change, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(check.sums, attributions.reshape(3, -1).sum(axis=1), rtol=1e-6)
    np.testing.assert_allclose(check.relative_error, np.abs(check.sums - change) / np.abs(change), rtol=1e-4)
    finer = interpret.completeness(
        small, images, interpret.integrated_gradients(small, images, 1, baseline=-0.5, steps=512), 1, baseline=-0.5
    )
    assert finer.relative_error.mean() < check.relative_error.mean()  # the rule's error shrinks with the steps
    with pytest.raises(ValueError, match="expected the inputs' shape"):
        interpret.completeness(small, images, attributions[:2], 1)


def test_integrated_gradients_is_exact_for_a_linear_model_and_batching_does_not_matter():
    keras.utils.set_random_seed(4)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3)(inputs)  # no activation: y is linear in x, so IG = (x - x') * gradient
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(keras.layers.Flatten()(x)))
    images = _x(2, seed=4, size=8)
    base = _x(1, seed=5, size=8)[0]
    expected = (images - base) * interpret.saliency(model, images, 0)
    _close(interpret.integrated_gradients(model, images, 0, baseline=base, steps=1), expected)
    small = small_models.flat_cnn(3)
    images = _x(3, seed=6)
    _close(
        interpret.integrated_gradients(small, images, [0, 2], steps=10, batch_size=3),
        interpret.integrated_gradients(small, images, [0, 2], steps=10, batch_size=64),
    )


def test_gradient_methods_check_their_arguments():
    model, x = small_models.flat_cnn(), _x()
    with pytest.raises(ValueError, match="Target classes must be in 0..2"):
        interpret.saliency(model, x, 3)
    with pytest.raises(ValueError, match="samples >= 1"):
        interpret.smooth_grad(model, x, 0, samples=0)
    with pytest.raises(ValueError, match="steps >= 1"):
        interpret.integrated_gradients(model, x, 0, steps=0)
    with pytest.raises(ValueError, match="reduce='mean'"):
        interpret.to_heatmap(x, "mean")


@pytest.mark.parametrize("n, batch_size", [(7, 4), (3, 32)])  # batches across samples; several copies of an image
def test_smooth_grad_equals_the_one_shot_noise_formula_bit_for_bit(n, batch_size):
    """Noisy copies made batch by batch give the bits of the formula with all copies at once."""
    from cnnlib.interpret.gradients import input_gradients

    model, x, samples, seed = small_models.flat_cnn(2), _x(n, seed=2), 3, 9
    axes = (1, 2, 3)
    sigma = 0.2 * (x.max(axis=axes, keepdims=True) - x.min(axis=axes, keepdims=True))
    eps = np.random.default_rng(seed).standard_normal((samples, *x.shape)).astype(np.float32)
    noisy = (x[None] + sigma[None] * eps).reshape(-1, *x.shape[1:])
    for target in (0, 2):
        grads = input_gradients(model, noisy, np.full(len(noisy), target), batch_size=batch_size)[0]
        expected = grads.reshape(samples, *x.shape).mean(axis=0)
        got = interpret.smooth_grad(model, x, target, samples=samples, seed=seed, batch_size=batch_size)
        np.testing.assert_array_equal(got, expected)
