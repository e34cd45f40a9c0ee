"""Activation maximisation: its random transform is the roll, zoom and crop it claims, it raises its objective on
average, and the same seed gives the same image."""

from __future__ import annotations

import numpy as np
import pytest
import small_models

from cnnlib import backend, interpret
from cnnlib.interpret.activation_max import transform_operators


def _crop_or_pad(image, size):
    """Central crop or zero pad of axis 0 back to ``size`` (as tf.image.resize_with_crop_or_pad)."""
    if len(image) >= size:
        start = (len(image) - size) // 2
        return image[start : start + size]
    out = np.zeros((size, *image.shape[1:]), image.dtype)
    start = (size - len(image)) // 2
    out[start : start + len(image)] = image
    return out


@pytest.mark.parametrize("seed", range(6))
def test_the_transform_matrices_roll_zoom_and_crop_or_pad_the_image(seed):
    """rows @ image @ columns^T equals the explicit transform: np.roll by the drawn shift, the bilinear resize of the
    backend layer (half-pixel centres, as tf.image.resize) to round(factor x size), then a central crop or pad."""
    height, width, jitter, scale = 40, 56, 8, (0.8, 1.2)
    image = np.random.default_rng(seed + 100).uniform(0, 255, (height, width, 3)).astype(np.float32)
    rows, columns = transform_operators(np.random.default_rng(seed), height, width, jitter, scale)
    again = np.random.default_rng(seed)  # the same draws, in the documented order
    shift = again.integers(-jitter, jitter + 1, size=2)
    factor = again.uniform(*scale)
    size = (round(factor * height), round(factor * width))
    resized = backend.resize_bilinear(np.roll(image, tuple(shift), axis=(0, 1)), size)
    expected = _crop_or_pad(_crop_or_pad(resized, height).transpose(1, 0, 2), width).transpose(1, 0, 2)
    got = np.einsum("ij,jkc,lk->ilc", rows, image, columns)
    np.testing.assert_allclose(got, expected, atol=2e-3)  # float32 rounding of values up to 255


def _channel_mean(model, image, layer, channel):
    return float(interpret.feature_maps(model, image[None], [layer])[layer][0, ..., channel].mean())


@pytest.mark.parametrize("layer, channel", [("conv3", None), (None, 2)])
def test_objective_rises_on_average_and_the_seed_fixes_the_image(layer, channel):
    model = small_models.project("arch3")
    if channel is None:  # a channel that is alive on the grey start image (random weights: many are not)
        grey = np.full((1, 224, 224, 3), 127.5, np.float32)
        channel = int(np.argmax(interpret.feature_maps(model, grey, [layer])[layer][0].mean(axis=(0, 1))))
    image, trace = interpret.activation_maximisation(model, channel, layer, steps=64, seed=1)
    assert image.shape == (224, 224, 3) and image.min() >= 0 and image.max() <= 255
    blocks = trace.reshape(4, 16).mean(axis=1)  # the objective under random jitter and scaling, 16-step means
    assert np.all(np.diff(blocks) > 0), blocks
    start, _ = interpret.activation_maximisation(model, channel, layer, steps=1, step_size=0.0, seed=1)
    if layer is None:
        final, initial = interpret.class_scores(model, np.stack([image, start]), channel)
    else:
        final, initial = _channel_mean(model, image, layer, channel), _channel_mean(model, start, layer, channel)
    assert final > initial
    again, trace_again = interpret.activation_maximisation(model, channel, layer, steps=64, seed=1)
    np.testing.assert_array_equal(again, image)
    np.testing.assert_array_equal(trace_again, trace)
    other, _ = interpret.activation_maximisation(model, channel, layer, steps=64, seed=2)
    assert np.abs(other - image).mean() > 1.0


def test_bad_targets_are_refused():
    model = small_models.project("arch3")
    with pytest.raises(ValueError, match="64 channels in layer 'conv4'; 64 does not exist"):
        interpret.activation_maximisation(model, 64, "conv4")
    with pytest.raises(ValueError, match="There are 5 classes; -1 does not exist"):
        interpret.activation_maximisation(model, -1)
    with pytest.raises(ValueError, match="Need steps >= 1 and value_range low < high; got steps=0"):
        interpret.activation_maximisation(model, 0, "conv4", steps=0)


def test_maximise_channels_measures_each_synthetic_image_against_its_reference():
    model = small_models.project("arch3")
    grey = np.full((1, 224, 224, 3), 127.5, np.float32)
    alive = np.argsort(interpret.feature_maps(model, grey, ["conv3"])["conv3"][0].mean(axis=(0, 1)))[-2:]
    channels = [int(c) for c in alive]
    on_grey = interpret.feature_maps(model, grey, ["conv3"])["conv3"][0].max(axis=(0, 1))
    reference = {c: float(on_grey[c]) for c in channels}  # what the grey start gives: ascent must beat it
    images, measured = interpret.maximise_channels(model, "conv3", channels, reference, steps=32, seed=1)
    assert images.shape == (2, 224, 224, 3) and list(measured) == channels
    for k, c in enumerate(channels):
        single, _ = interpret.activation_maximisation(model, c, "conv3", steps=32, seed=1)
        np.testing.assert_array_equal(images[k], single)  # the same ascent as one call per channel
        expected = float(interpret.feature_maps(model, single[None], ["conv3"])["conv3"][0, ..., c].max())
        assert measured[c]["activation"] == pytest.approx(expected, rel=1e-6)
        assert measured[c]["ratio"] == pytest.approx(measured[c]["activation"] / reference[c])
        assert measured[c]["ratio"] > 1  # the synthetic image drives its channel harder than the grey start
    with pytest.raises(KeyError, match=r"No reference activation for channel\(s\) \[0\]"):
        interpret.maximise_channels(model, "conv3", [0], {}, steps=1)
