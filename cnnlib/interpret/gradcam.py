"""Grad-CAM (Selvaraju et al., 2017) and guided Grad-CAM, upsampled along the receptive fields.

map_c = ReLU(sum_k alpha_k^c A_k), with alpha_k^c the spatial mean of d y_c / d A_k, where
y_c is the class score *before* softmax (found by ``view.score_source``: softmax saturation
would flatten the gradients) and A the target layer's activations (the last convolution
layer by default; nested layers by path). All target classes of a batch come from one
forward pass, with the model's current weights.

Upsampling (``upsample``): "aligned" (default) puts each cell at the centre of its neuron's
receptive field and interpolates linearly between centres; beyond the outermost centres the
edge value is held, since those pixels still lie inside the edge neurons' fields (a fade to
zero would claim they do not matter, which nothing shows). "resize" is the plain bilinear
image resize every public implementation uses; it spreads the cells evenly over the image,
which is right for "same"-padded networks (VGG19: both agree) but moves the heat by up to
half a field for "valid" ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from cnnlib.interpret.guided_backprop import guided_backprop, one_hot_scores
from cnnlib.interpret.view import input_spec, last_conv_layer, resolve_layer, view
from cnnlib.receptive_field import field_centres

UPSAMPLING = ("aligned", "resize")


def _cam_function(model: keras.Model, layer_path: str, score_layer: str | None, targets: tuple[int, ...]):
    """Compiled inputs -> raw maps (N, K, h, w) for ``targets``, once per (layer, score layer, targets)."""
    copy = view(model, score_layer=score_layer)
    key = ("gradcam", layer_path, targets)
    if key not in copy.functions:
        probe = copy.probe([layer_path], with_scores=True)
        n_classes = copy.scores.shape[-1]
        if min(targets) < 0 or max(targets) >= n_classes:
            raise ValueError(f"Target classes must be in 0..{n_classes - 1}; got {list(targets)}.")

        @tf.function(input_signature=[input_spec(model)])
        def cams(x):
            with tf.GradientTape(persistent=True) as tape:
                with copy.current():
                    activations, scores = probe(x, training=False)
                activations, scores = tf.cast(activations, tf.float32), tf.cast(scores, tf.float32)
                per_target = [tf.reduce_sum(scores[:, t]) for t in targets]  # images are independent
            maps = []
            for score in per_target:
                alpha = tf.reduce_mean(tape.gradient(score, activations), axis=(1, 2), keepdims=True)  # (N,1,1,C)
                maps.append(tf.nn.relu(tf.reduce_sum(alpha * activations, axis=-1)))  # (N, h, w)
            return tf.stack(maps, axis=1)

        copy.functions[key] = cams
    return copy.functions[key]


def _layer(model: keras.Model, layer_name: str | None) -> str:
    path = resolve_layer(model, layer_name) if layer_name else last_conv_layer(model)
    if len(view(model).outputs[path].shape) != 4:
        raise ValueError(f"Grad-CAM needs a layer with (h, w, channels) output; {path!r} has "
                         f"{tuple(view(model).outputs[path].shape[1:])}.")
    return path


def grad_cam_raw(
    model: keras.Model,
    inputs: np.ndarray,
    targets: int | Sequence[int],
    layer_name: str | None = None,
    score_layer: str | None = None,
) -> np.ndarray:
    """Unnormalised Grad-CAM at the target layer's resolution: (N, K, h, w), or (N, h, w) for one target."""
    single = isinstance(targets, (int, np.integer))
    target_tuple = (int(targets),) if single else tuple(int(t) for t in targets)
    function = _cam_function(model, _layer(model, layer_name), score_layer, target_tuple)
    maps = np.asarray(function(np.asarray(inputs, np.float32)))
    return maps[:, 0] if single else maps


def _interpolation_matrix(centres: np.ndarray, size: int) -> np.ndarray:
    """(size, n) weights: pixel p gets the linear interpolation of the cells whose centres bracket it."""
    n = len(centres)
    weights = np.zeros((size, n))
    if n == 1:
        weights[:, 0] = 1.0
        return weights
    position = np.interp(np.arange(size), centres, np.arange(n))  # fractional cell index, held at the ends
    low = np.clip(np.floor(position).astype(int), 0, n - 2)
    frac = position - low
    weights[np.arange(size), low] = 1 - frac
    weights[np.arange(size), low + 1] += frac
    return weights


def _normalise(up: np.ndarray) -> np.ndarray:
    """Each (H, W) map scaled to [0, 1]; all-zero maps stay zero."""
    flat = up.reshape(-1, *up.shape[-2:])
    peak = flat.reshape(len(flat), -1).max(axis=1)
    return (flat / np.where(peak > 0, peak, 1)[:, None, None]).reshape(up.shape).astype(np.float32)


def upsample_maps(maps: np.ndarray, model: keras.Model, layer_name: str, method: str = "aligned") -> np.ndarray:
    """(..., h, w) maps of ``layer_name`` -> (..., H, W) on the input grid, each scaled to [0, 1]."""
    size = tuple(model.inputs[0].shape[1:3])
    if method == "resize":
        flat = maps.reshape(-1, *maps.shape[-2:], 1)
        up = tf.image.resize(flat, size, method="bilinear").numpy()[..., 0].reshape(*maps.shape[:-2], *size)
    elif method == "aligned":
        row_centres, col_centres = field_centres(model, layer_name)
        up = np.einsum("Hh,...hw,Ww->...HW", _interpolation_matrix(row_centres, size[0]), maps,
                       _interpolation_matrix(col_centres, size[1]))
    else:
        raise ValueError(f"upsample={method!r}: choose one of {UPSAMPLING}.")
    return _normalise(up)


def grad_cam(
    model: keras.Model,
    inputs: np.ndarray,
    targets: int | Sequence[int],
    layer_name: str | None = None,
    score_layer: str | None = None,
    upsample: str = "aligned",
) -> np.ndarray:
    """Grad-CAM on the input grid, scaled to [0, 1]: (N, K, H, W), or (N, H, W) for one target."""
    path = _layer(model, layer_name)
    raw = grad_cam_raw(model, inputs, targets, path, score_layer)
    return upsample_maps(raw, model, path, upsample)


def guided_grad_cam(
    model: keras.Model,
    inputs: np.ndarray,
    target: int,
    layer_name: str | None = None,
    score_layer: str | None = None,
    upsample: str = "aligned",
) -> np.ndarray:
    """Guided backprop of the class score times the upsampled Grad-CAM map: (N, H, W, C)."""
    weights = one_hot_scores(model, [target] * len(inputs), score_layer)
    guided = guided_backprop(model, inputs, score_layer, weights=weights)
    return guided * grad_cam(model, inputs, target, layer_name, score_layer, upsample)[..., None]


def compare_upsampling(
    model: keras.Model, inputs: np.ndarray, targets: Sequence[int], layer_name: str | None = None
) -> np.ndarray:
    """Each image's Grad-CAM for its own target, aligned and plainly resized: (N, 2, H, W) in [0, 1]."""
    path = _layer(model, layer_name)
    raw = grad_cam_raw(model, inputs, sorted(set(int(t) for t in targets)), path)
    column = [sorted(set(int(t) for t in targets)).index(int(t)) for t in targets]
    own = raw[np.arange(len(inputs)), column]  # (N, h, w)
    return np.stack([upsample_maps(own, model, path, "aligned"), upsample_maps(own, model, path, "resize")], axis=1)
