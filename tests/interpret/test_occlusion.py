"""Occlusion equals a brute-force loop over patch positions run on the original model."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import small_models

from cnnlib import backend, interpret
from cnnlib.interpret.occlusions import patch_positions

pytestmark = pytest.mark.backends  # run once more on JAX by `make test-jax`


def _logits(model, x):
    kernel, bias = model.get_layer("head").get_weights()
    return backend.to_numpy(keras.Model(model.input, model.get_layer("head").input)(x)) @ kernel + bias


def _brute_force(model, x, target, patch, stride, fill):
    """Every position (the last one flush with the far edge), one forward pass each, averaged per pixel."""
    height, width = x.shape[1:3]
    total = np.zeros((len(x), height, width))
    count = np.zeros((height, width))
    rows = sorted(set(list(range(0, height - patch[0] + 1, stride[0])) + [height - patch[0]]))
    cols = sorted(set(list(range(0, width - patch[1] + 1, stride[1])) + [width - patch[1]]))
    base = _logits(model, x)[:, target]
    for r in rows:
        for c in cols:
            hidden = x.copy()
            hidden[:, r : r + patch[0], c : c + patch[1]] = fill
            total[:, r : r + patch[0], c : c + patch[1]] += (base - _logits(model, hidden)[:, target])[:, None, None]
            count[r : r + patch[0], c : c + patch[1]] += 1
    return total / count


def test_occlusion_equals_a_brute_force_loop():
    model = small_models.flat_cnn(shape=(17, 15, 3), filters=(4,))
    x = np.random.default_rng(0).uniform(-1, 1, (2, 17, 15, 3)).astype(np.float32)
    fill = np.array([0.5, -0.2, 0.1], np.float32)
    ours = interpret.occlusion(model, x, [0, 2], patch=(5, 4), stride=(3, 4), fill=fill, batch_size=7)
    assert ours.shape == (2, 2, 17, 15)
    for k, target in enumerate((0, 2)):
        expected = _brute_force(model, x, target, (5, 4), (3, 4), fill)
        np.testing.assert_allclose(ours[:, k], expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    np.testing.assert_allclose(
        interpret.occlusion(model, x, 2, patch=(5, 4), stride=(3, 4), fill=fill), ours[:, 1], rtol=1e-5, atol=1e-7
    )
    single = interpret.occlusion(model, x, 1, patch=3, stride=2, fill=0.0)
    np.testing.assert_allclose(single, _brute_force(model, x, 1, (3, 3), (2, 2), 0.0), rtol=1e-4, atol=1e-6)


def test_patch_positions_cover_every_pixel_and_bad_sizes_are_refused():
    assert patch_positions(17, 5, 3) == [0, 3, 6, 9, 12]
    assert patch_positions(15, 4, 4) == [0, 4, 8, 11]
    with pytest.raises(ValueError, match="1 <= patch <= image size \\(17\\)"):
        patch_positions(17, 18, 1)
    with pytest.raises(ValueError, match="stride >= 1"):
        patch_positions(17, 3, 0)
