"""Grad-CAM (Selvaraju et al., 2017) and guided Grad-CAM.

map_c = ReLU(sum_k alpha_k^c A_k), with alpha_k^c the spatial mean of d y_c / d A_k, where
y_c is the class score *before* softmax (the ``logits`` layer: softmax saturation would
flatten the gradients) and A the target layer's activations (last conv layer by default).
All target classes of a batch come from one forward pass.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from cnnlib.interpret.feature_maps import conv_layer_names
from cnnlib.interpret.guided_backprop import guided_backprop

_FUNCTIONS: "weakref.WeakKeyDictionary[keras.Model, dict]" = weakref.WeakKeyDictionary()


def _cam_function(model: keras.Model, layer_name: str, logits_layer: str, targets: tuple[int, ...]):
    """tf.function inputs -> raw maps (N, K, h, w) for ``targets``, compiled once per (layer, targets)."""
    cache = _FUNCTIONS.setdefault(model, {})
    key = (layer_name, logits_layer, targets)
    if key not in cache:
        probe = keras.Model(model.input, [model.get_layer(layer_name).output, model.get_layer(logits_layer).output])

        @tf.function(input_signature=[tf.TensorSpec([None, *model.input.shape[1:]], tf.float32)])
        def cams(x):
            with tf.GradientTape(persistent=True) as tape:
                activations, logits = probe(x, training=False)
                scores = [tf.reduce_sum(logits[:, t]) for t in targets]  # images are independent
            maps = []
            for score in scores:
                alpha = tf.reduce_mean(tape.gradient(score, activations), axis=(1, 2), keepdims=True)  # (N,1,1,C)
                maps.append(tf.nn.relu(tf.reduce_sum(alpha * activations, axis=-1)))  # (N, h, w)
            return tf.stack(maps, axis=1)

        cache[key] = cams
    return cache[key]


def grad_cam_raw(
    model: keras.Model,
    inputs: np.ndarray,
    targets: int | Sequence[int],
    layer_name: str | None = None,
    logits_layer: str = "logits",
) -> np.ndarray:
    """Unnormalised Grad-CAM at the target layer's resolution: (N, K, h, w), or (N, h, w) for one target."""
    single = isinstance(targets, (int, np.integer))
    target_tuple = (int(targets),) if single else tuple(int(t) for t in targets)
    layer_name = layer_name or conv_layer_names(model)[-1]
    maps = np.asarray(_cam_function(model, layer_name, logits_layer, target_tuple)(np.asarray(inputs, np.float32)))
    return maps[:, 0] if single else maps


def _upsample_normalise(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(..., h, w) -> (..., H, W), bilinear, each map scaled to [0, 1] (all-zero maps stay zero)."""
    lead = maps.shape[:-2]
    flat = maps.reshape(-1, *maps.shape[-2:], 1)
    up = tf.image.resize(flat, size, method="bilinear").numpy()[..., 0]
    peak = up.reshape(len(up), -1).max(axis=1)
    up = up / np.where(peak > 0, peak, 1)[:, None, None]
    return up.reshape(*lead, *size).astype(np.float32)


def grad_cam(
    model: keras.Model,
    inputs: np.ndarray,
    targets: int | Sequence[int],
    layer_name: str | None = None,
    logits_layer: str = "logits",
) -> np.ndarray:
    """Grad-CAM upsampled to the input size and scaled to [0, 1]: (N, K, H, W), or (N, H, W) for one target."""
    raw = grad_cam_raw(model, inputs, targets, layer_name, logits_layer)
    return _upsample_normalise(raw, tuple(model.input.shape[1:3]))


def guided_grad_cam(
    model: keras.Model,
    inputs: np.ndarray,
    target: int,
    layer_name: str | None = None,
    logits_layer: str = "logits",
) -> np.ndarray:
    """Guided backprop of the class logit times the upsampled Grad-CAM map: (N, H, W, 3)."""
    n_classes = model.get_layer(logits_layer).output.shape[-1]
    one_hot = np.zeros((len(inputs), n_classes), np.float32)
    one_hot[:, target] = 1.0
    guided = guided_backprop(model, inputs, logits_layer, weights=one_hot)
    return guided * grad_cam(model, inputs, target, layer_name, logits_layer)[..., None]
