"""Score-CAM (Wang et al., 2020): channel weights from masked forward passes, no gradients.

For each image and each scored channel k of the layer: upsample A_k to the input grid
(``mask_upsample``: one of ``UPSAMPLING``, by default the rule every CAM here uses),
scale it to [0, 1] by its own min and max (a constant map gives a zero mask), multiply the image
by it and run the model: w_k^c = y_c(x * mask_k), the class score before softmax
(``probabilities=True``: the softmax probability instead, the Score-CAM authors' and
tf-keras-vis's convention). map_c = ReLU(sum_k w_k^c A_k), upsampled like every CAM.
No baseline score is subtracted (the authors' code and tf-keras-vis do not either).

Cost: one forward pass per (image, scored channel), in batches of ``batch_size``; all target
classes come from the same passes. ``channels`` caps the channels scored: each image scores its
``channels`` activation maps with the largest spatial standard deviation (Faster Score-CAM,
tabayashi0117; ``scored_channels`` returns them); the other channels get weight 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cnnlib import backend
from cnnlib.backend import keras
from cnnlib.interpret.cam import cam_layer, target_tuple
from cnnlib.interpret.feature_maps import activations_function
from cnnlib.interpret.upsample import DEFAULT_UPSAMPLING, UPSAMPLING, upsample_maps, upsampling_matrices
from cnnlib.interpret.view import view

__all__ = ["score_cam", "scored_channels"]


def _mask_matrices(model: keras.Model, path: str, method: str) -> tuple[np.ndarray, np.ndarray]:
    """(H, h), (W, w) float32 matrices that upsample a layer map to the input grid."""
    if method in UPSAMPLING and method != "resize":
        rows, cols = upsampling_matrices(model, path, method)
    elif method == "resize":  # bilinear resize, half-pixel centres, as tf.image.resize: its matrix on unit vectors
        h, w = view(model).outputs[path].shape[1:3]
        size = tuple(model.inputs[0].shape[1:3])
        rows = backend.resize_bilinear(np.eye(h, dtype=np.float32)[:, :, None], (size[0], h))[:, :, 0]
        cols = backend.resize_bilinear(np.eye(w, dtype=np.float32)[:, :, None], (size[1], w))[:, :, 0]
    else:
        raise ValueError(f"mask_upsample={method!r}: choose one of {UPSAMPLING}.")
    return np.asarray(rows, np.float32), np.asarray(cols, np.float32)


def _masked_scores_function(model: keras.Model, path: str, score_layer: str | None, method: str):
    """Compiled (image (H, W, C), maps (h, w, k)) -> class scores (k, classes) of the image times each mask."""
    copy = view(model, score_layer=score_layer)
    key = ("scorecam", path, method, backend.NAME)
    if key not in copy.functions:
        rows, cols = (keras.ops.convert_to_tensor(m) for m in _mask_matrices(model, path, method))
        probe = keras.Model(copy.inputs, copy.scores)
        ops = keras.ops
        signature = [(tuple(model.inputs[0].shape[1:]), "float32"), ((*copy.outputs[path].shape[1:3], None), "float32")]

        def masked_scores(image, maps):
            up = ops.einsum("Hh,hwk,Ww->kHW", rows, maps, cols)
            low = ops.min(up, axis=(1, 2), keepdims=True)
            span = ops.max(up, axis=(1, 2), keepdims=True) - low
            masks = ops.where(span > 0, (up - low) / ops.where(span > 0, span, 1.0), 0.0)
            return ops.cast(probe(image[None] * masks[..., None], training=False), "float32")

        copy.functions[key] = backend.compiled(masked_scores, copy.pairs, signature)
    return copy.functions[key]


def scored_channels(activations: np.ndarray, channels: int | None) -> np.ndarray:
    """(N, k) indices of the channels Score-CAM scores: all, or each image's ``channels`` largest-std maps.

    Args:
        activations: (N, h, w, C) activations of the layer.
        channels: how many channels to score per image; None (or >= C): all C.

    Returns:
        int (N, k) channel indices, ascending in each row: every channel (k = C), or each image's ``channels`` channels
        with the largest spatial standard deviation (on ties the lower index).

    Raises:
        ValueError: if ``channels`` < 1.
    """
    n, total = activations.shape[0], activations.shape[-1]
    if channels is None or channels >= total:
        return np.tile(np.arange(total), (n, 1))
    if channels < 1:
        raise ValueError(f"channels={channels}: score at least 1 channel (or None for all {total}).")
    spread = activations.reshape(n, -1, total).std(axis=1)
    return np.sort(np.argsort(-spread, axis=1, kind="stable")[:, :channels], axis=1)


def score_cam(
    model: keras.Model,
    inputs: np.ndarray,
    targets: int | Sequence[int],
    layer_name: str | None = None,
    *,
    score_layer: str | None = None,
    upsample: str | None = DEFAULT_UPSAMPLING,
    channels: int | None = None,
    batch_size: int = 32,
    probabilities: bool = False,
    mask_upsample: str = DEFAULT_UPSAMPLING,
) -> np.ndarray:
    """Score-CAM on the input grid scaled to [0, 1]: (N, K, H, W), or (N, H, W) for one target.

    One forward pass per (image, scored channel), in batches; all targets come from the same passes.

    Args:
        model: a Keras 3 classifier with one image input and one output; its current weights are used.
        inputs: float32 (N, H, W, C) images in the model's input units (uint8-range pixels for the custom networks,
            which rescale inside; ``vgg19.preprocess`` output for VGG19).
        targets: class indices: one int gives (N, H, W); a sequence of K gives (N, K, H, W), in its order (with
            ``upsample=None``: (N, h, w) and (N, K, h, w)).
        layer_name: path (``"vgg19/block5_conv4"``) or unique name of a layer with an (h, w, channels) output; None: the
            last spatial feature map before the head (``default_layer``).
        score_layer: path or unique name of a layer whose output (N, classes) is taken as the class scores; None: the
            class scores before softmax, found by ``score_source``.
        upsample: how the maps reach the input grid: one of ``UPSAMPLING`` (``DEFAULT_UPSAMPLING``, "aligned",
            along the receptive fields, the edge held; "field", the edge fading; "resize"), see
            ``upsample_maps``; None: no upsampling, the raw maps at the layer's resolution.
        channels: how many channels to score per image, each image's largest-std ones (see ``scored_channels``); None:
            all. The other channels get weight 0.
        batch_size: masked copies of an image per forward pass.
        probabilities: weight by the softmax probability of the masked copy's class scores (the Score-CAM authors' and
            tf-keras-vis's convention) instead of the class score itself.
        mask_upsample: how each activation map becomes a mask on the input grid: one of ``UPSAMPLING``; each mask is
            then scaled to [0, 1] by its own min and max (a constant map gives a zero mask).

    Returns:
        float32: upsampled, (N, H, W) for one target or (N, K, H, W) for K, each map scaled to [0, 1] by its own maximum
        (an all-zero map stays zero); with ``upsample=None``, (N, h, w) or (N, K, h, w) at the layer's resolution, >= 0
        and unscaled (activation x class score, or x probability).

    Raises:
        ValueError: if a target is outside 0..classes-1 (or ``targets`` is empty), the layer's output is not
            (h, w, channels), ``channels`` < 1, ``mask_upsample`` is not one of ``UPSAMPLING``, or ``upsample`` is
            not "aligned", "resize" or None.
        ExplainError: if a layer name is unknown or ambiguous, ``layer_name=None`` and the model has no convolution
            layer, ``model`` cannot be copied (see ``view.view``: not one image input and one output, a subclassed
            model, a layer used twice), or (upsampled along the fields) the receptive fields cannot be computed
            (``models.receptive_field``: a layer it does not support, an input of unspecified size).
    """
    path = cam_layer(model, layer_name)
    single, values = target_tuple(model, targets, score_layer)
    x = np.asarray(inputs, np.float32)
    acts = np.asarray(activations_function(model, [path])(x)[0], np.float32)  # (N, h, w, C)
    chosen = scored_channels(acts, channels)
    function = _masked_scores_function(model, path, score_layer, mask_upsample)
    weights = np.zeros((len(x), len(values), acts.shape[-1]), np.float32)
    for i in range(len(x)):
        scores = np.concatenate(
            [
                np.asarray(function(x[i], acts[i][..., chosen[i, s : s + batch_size]]))
                for s in range(0, chosen.shape[1], batch_size)
            ]
        )  # (k, classes)
        if probabilities:
            scores = backend.to_numpy(keras.ops.softmax(scores, axis=-1))
        weights[i][:, chosen[i]] = scores[:, list(values)].T
    raw = np.maximum(np.einsum("nhwc,nkc->nkhw", acts, weights), 0)
    raw = raw[:, 0] if single else raw
    return raw if upsample is None else upsample_maps(raw, model, path, upsample)
