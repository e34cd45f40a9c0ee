"""Grad-CAM (Selvaraju et al., 2017) and guided Grad-CAM, upsampled along the receptive fields.

map_c = ReLU(sum_k alpha_k^c A_k), with alpha_k^c the spatial mean of d y_c / d A_k, where
y_c is the class score *before* softmax (found by ``view.score_source``: softmax saturation
would flatten the gradients) and A the target layer's activations (the last convolution
layer by default; nested layers by path). All target classes of a batch come from one
forward pass, with the model's current weights. Grad-CAM is the "gradcam" weighting of the
CAM family in ``cam`` (Grad-CAM++, HiResCAM and LayerCAM are the others).

Upsampling (``upsample``, see ``upsample``): "aligned" (default) along the receptive fields,
"resize" the plain bilinear image resize every public implementation uses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cnnlib._tensorflow import keras
from cnnlib.interpret.cam import cam_layer, cam_raw
from cnnlib.interpret.guided_backprop import guided_backprop, one_hot_scores
from cnnlib.interpret.upsample import UPSAMPLING, upsample_maps

__all__ = ["UPSAMPLING", "compare_upsampling", "grad_cam", "grad_cam_raw", "guided_grad_cam", "upsample_maps"]


def grad_cam_raw(
    model: keras.Model,
    inputs: np.ndarray,
    targets: int | Sequence[int],
    layer_name: str | None = None,
    score_layer: str | None = None,
) -> np.ndarray:
    """Unnormalised Grad-CAM at the target layer's resolution: (N, K, h, w), or (N, h, w) for one target."""
    return cam_raw(model, inputs, targets, "gradcam", layer_name, score_layer)


def grad_cam(
    model: keras.Model,
    inputs: np.ndarray,
    targets: int | Sequence[int],
    layer_name: str | None = None,
    score_layer: str | None = None,
    upsample: str = "aligned",
) -> np.ndarray:
    """Grad-CAM on the input grid, scaled to [0, 1]: (N, K, H, W), or (N, H, W) for one target."""
    path = cam_layer(model, layer_name)
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
    path = cam_layer(model, layer_name)
    raw = grad_cam_raw(model, inputs, sorted(set(int(t) for t in targets)), path)
    column = [sorted(set(int(t) for t in targets)).index(int(t)) for t in targets]
    own = raw[np.arange(len(inputs)), column]  # (N, h, w)
    return np.stack([upsample_maps(own, model, path, "aligned"), upsample_maps(own, model, path, "resize")], axis=1)
