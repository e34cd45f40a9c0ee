"""Grad-CAM (Selvaraju et al., 2017) and guided Grad-CAM, upsampled along the receptive fields.

map_c = ReLU(sum_k alpha_k^c A_k), with alpha_k^c the spatial mean of d y_c / d A_k, where
y_c is the class score *before* softmax (found by ``view.score_source``: softmax saturation
would flatten the gradients) and A the target layer's activations (the last convolution
layer by default; nested layers by path). All target classes of a batch come from one
forward pass, with the model's current weights. Grad-CAM is the "gradcam" weighting of the
CAM family in ``cam`` (Grad-CAM++, HiResCAM and LayerCAM are the others).

Upsampling (``upsample``, see ``upsample``): ``DEFAULT_UPSAMPLING`` ("aligned": along the receptive fields, the
edge value held), "field" (the edge fading as the effective field), or "resize" (the plain bilinear image resize
every public implementation uses); the localisation benchmark chose the default.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cnnlib.backend import keras
from cnnlib.interpret.cam import cam_layer, cam_raw
from cnnlib.interpret.guided_backprop import guided_backprop, one_hot_scores
from cnnlib.interpret.upsample import DEFAULT_UPSAMPLING, UPSAMPLING, upsample_maps

__all__ = [
    "DEFAULT_UPSAMPLING",
    "UPSAMPLING",
    "compare_upsampling",
    "grad_cam",
    "grad_cam_raw",
    "guided_grad_cam",
    "upsample_maps",
]


def grad_cam_raw(
    model: keras.Model,
    inputs: np.ndarray,
    targets: int | Sequence[int],
    layer_name: str | None = None,
    score_layer: str | None = None,
) -> np.ndarray:
    """Unnormalised Grad-CAM at the target layer's resolution: (N, K, h, w), or (N, h, w) for one target.

    ReLU(sum_k alpha_k A_k), alpha_k the spatial mean of d y_c / d A_k, all targets from one forward pass (``cam_raw``
    with the "gradcam" weighting).

    Args:
        model: a Keras 3 classifier with one image input and one output; its current weights are used.
        inputs: float32 (N, H, W, C) images in the model's input units (uint8-range pixels for the custom networks,
            which rescale inside; ``vgg19.preprocess`` output for VGG19).
        targets: class indices: one int gives (N, h, w); a sequence of K gives (N, K, h, w), in its order.
        layer_name: path (``"vgg19/block5_conv4"``) or unique name of a layer with an (h, w, channels) output; None: the
            last spatial feature map before the head (``default_layer``).
        score_layer: path or unique name of a layer whose output (N, classes) is taken as the class scores; None: the
            class scores before softmax, found by ``score_source``.

    Returns:
        float32 maps at the layer's resolution, >= 0 and unscaled, in units of the class score (mean gradient x
        activation): (N, h, w) for one target, (N, K, h, w) for K targets.

    Raises:
        ValueError: if a target is outside 0..classes-1 (or ``targets`` is empty), or the layer's output is not
            (h, w, channels).
        ExplainError: if a layer name is unknown or ambiguous, ``layer_name=None`` and the model has no convolution
            layer, or ``model`` cannot be copied (see ``view.view``: not one image input and one output, a subclassed
            model, a layer used twice).
    """
    return cam_raw(model, inputs, targets, "gradcam", layer_name, score_layer=score_layer)


def grad_cam(
    model: keras.Model,
    inputs: np.ndarray,
    targets: int | Sequence[int],
    layer_name: str | None = None,
    *,
    score_layer: str | None = None,
    upsample: str = DEFAULT_UPSAMPLING,
) -> np.ndarray:
    """Grad-CAM on the input grid, scaled to [0, 1]: (N, K, H, W), or (N, H, W) for one target.

    ``grad_cam_raw`` upsampled to the input grid and divided, map by map, by its maximum (``upsample_maps``).

    Args:
        model: a Keras 3 classifier with one image input and one output; its current weights are used.
        inputs: float32 (N, H, W, C) images in the model's input units (uint8-range pixels for the custom networks,
            which rescale inside; ``vgg19.preprocess`` output for VGG19).
        targets: class indices: one int gives (N, H, W); a sequence of K gives (N, K, H, W), in its order.
        layer_name: path (``"vgg19/block5_conv4"``) or unique name of a layer with an (h, w, channels) output; None: the
            last spatial feature map before the head (``default_layer``).
        score_layer: path or unique name of a layer whose output (N, classes) is taken as the class scores; None: the
            class scores before softmax, found by ``score_source``.
        upsample: one of ``UPSAMPLING`` (``DEFAULT_UPSAMPLING``, "aligned", along the receptive fields, the edge
            held; "field", the edge fading; "resize", the plain bilinear resize); see ``upsample_maps``.

    Returns:
        float32 maps on the input grid, each scaled to [0, 1] by its own maximum (an all-zero map stays zero): (N, H, W)
        for one target, (N, K, H, W) for K targets.

    Raises:
        ValueError: if a target is outside 0..classes-1 (or ``targets`` is empty), the layer's output is not
            (h, w, channels), or ``upsample`` is not one of ``UPSAMPLING``.
        ExplainError: if a layer name is unknown or ambiguous, ``layer_name=None`` and the model has no convolution
            layer, ``model`` cannot be copied (see ``view.view``: not one image input and one output, a subclassed
            model, a layer used twice), or (upsampled along the fields) the receptive fields cannot be computed
            (``models.receptive_field``: a layer it does not support, an input of unspecified size).
    """
    path = cam_layer(model, layer_name)
    raw = grad_cam_raw(model, inputs, targets, path, score_layer)
    return upsample_maps(raw, model, path, upsample)


def guided_grad_cam(
    model: keras.Model,
    inputs: np.ndarray,
    target: int,
    layer_name: str | None = None,
    *,
    score_layer: str | None = None,
    upsample: str = DEFAULT_UPSAMPLING,
) -> np.ndarray:
    """Guided backprop of the class score times the upsampled Grad-CAM map: (N, H, W, C).

    Activations without a guided rule (swish, gelu, elu, LeakyReLU, ...) keep their ordinary gradient; a ``UserWarning``
    names them (once per process).

    Args:
        model: a Keras 3 classifier with one image input and one output; its current weights are used.
        inputs: float32 (N, H, W, C) images in the model's input units (uint8-range pixels for the custom networks,
            which rescale inside; ``vgg19.preprocess`` output for VGG19).
        target: one class index (an int, not a sequence), the same for every image.
        layer_name: the Grad-CAM layer, path or unique name with an (h, w, channels) output; None: the last spatial
            feature map before the head (``default_layer``).
        score_layer: path or unique name of a layer whose output (N, classes) is taken as the class scores, by both
            factors; None: the class scores before softmax, found by ``score_source``.
        upsample: how the Grad-CAM map reaches the input grid: one of ``UPSAMPLING`` (see ``grad_cam``).

    Returns:
        float32 (N, H, W, C): the guided gradient of the class score with respect to each input value (signed, in units
        of the class score per input unit) times ``grad_cam``'s map (in [0, 1]) over every colour; not rescaled.

    Raises:
        ValueError: if ``target`` is outside 0..classes-1, the layer's output is not (h, w, channels), or ``upsample``
            is not one of ``UPSAMPLING``.
        ExplainError: if a layer name is unknown or ambiguous, ``layer_name=None`` and the model has no convolution
            layer, ``model`` cannot be copied (see ``view.view``: not one image input and one output, a subclassed
            model, a layer used twice), or (upsampled along the fields) the receptive fields cannot be computed
            (``models.receptive_field``: a layer it does not support, an input of unspecified size).
    """
    weights = one_hot_scores(model, [target] * len(inputs), score_layer)
    guided = guided_backprop(model, inputs, score_layer, weights=weights)
    return guided * grad_cam(model, inputs, target, layer_name, score_layer=score_layer, upsample=upsample)[..., None]


def compare_upsampling(
    model: keras.Model, inputs: np.ndarray, targets: Sequence[int], layer_name: str | None = None
) -> np.ndarray:
    """Each image's Grad-CAM for its own target, upsampled by every rule of ``UPSAMPLING``: (N, U, H, W) in [0, 1].

    The raw maps come from one pass for all distinct targets, with the class scores before softmax found by
    ``score_source``.

    Args:
        model: a Keras 3 classifier with one image input and one output; its current weights are used.
        inputs: float32 (N, H, W, C) images in the model's input units (uint8-range pixels for the custom networks,
            which rescale inside; ``vgg19.preprocess`` output for VGG19).
        targets: one class index per image (length N).
        layer_name: path (``"vgg19/block5_conv4"``) or unique name of a layer with an (h, w, channels) output; None: the
            last spatial feature map before the head (``default_layer``).

    Returns:
        float32 (N, U, H, W): [:, u] upsampled by ``UPSAMPLING[u]`` ("field", "aligned", "resize"); each map scaled to
        [0, 1] by its own maximum (an all-zero map stays zero).

    Raises:
        ValueError: if a target is outside 0..classes-1 (or ``targets`` is empty), or the layer's output is not
            (h, w, channels).
        ExplainError: if a layer name is unknown or ambiguous, ``layer_name=None`` and the model has no convolution
            layer, ``model`` cannot be copied (see ``view.view``: not one image input and one output, a subclassed
            model, a layer used twice), or the receptive fields cannot be computed (``models.receptive_field``: a layer
            it does not support, an input of unspecified size).
    """
    path = cam_layer(model, layer_name)
    raw = grad_cam_raw(model, inputs, sorted(set(int(t) for t in targets)), path)
    column = [sorted(set(int(t) for t in targets)).index(int(t)) for t in targets]
    own = raw[np.arange(len(inputs)), column]  # (N, h, w)
    return np.stack([upsample_maps(own, model, path, method) for method in UPSAMPLING], axis=1)
