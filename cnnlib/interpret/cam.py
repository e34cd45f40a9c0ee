"""Gradient-weighted class activation maps: a CAM is a weighted sum of a conv layer's activations.

map_c(i, j) = ReLU(sum_k w_k^c(i, j) A_k(i, j)), with A the target layer's activations and the
weights w built from g = d y_c / d A, y_c the class score *before* softmax (``view.score_source``).
The variants differ only in the weights (the factoring of pytorch-grad-cam):

- ``gradcam``   (Selvaraju et al., 2017): w_k = mean_ij g_k(i, j), one number per channel.
- ``gradcam++`` (Chattopadhay et al., 2018): w_k = sum_ij alpha_k(i, j) ReLU(g_k(i, j)) with
  alpha = g^2 / (2 g^2 + sum_ab A_k(a, b) g^3), the closed form for y = exp(score) (exp cancels in
  alpha; only a positive factor exp(y_c) per image is left out). ``alpha_sum_to_one=True`` also
  rescales alpha to sum 1 over (i, j) per channel, as the authors' code and tf-keras-vis do.
- ``hirescam``  (Draelos & Carin, 2020): w = g element-wise, so sum_ij of the map before the ReLU is
  exactly the score change the layer explains (for a GAP -> dense head it is Zhou et al.'s CAM / (h w)).
- ``layercam``  (Jiang et al., 2021): w = ReLU(g) element-wise; usable on earlier layers.

All target classes of a batch come from one forward pass, with the model's current weights.
Maps are upsampled with ``upsample.upsample_maps`` (``DEFAULT_UPSAMPLING``: "aligned", along the receptive fields).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cnnlib import backend
from cnnlib.backend import keras
from cnnlib.interpret.upsample import DEFAULT_UPSAMPLING, upsample_maps
from cnnlib.interpret.view import default_layer, input_signature, resolve_layer, view

ops = keras.ops

WEIGHTINGS = ("gradcam", "gradcam++", "hirescam", "layercam")


def cam_layer(model: keras.Model, layer_name: str | None) -> str:
    """Path of the CAM's layer (``default_layer`` by default); it must have a 4-D output."""
    path = resolve_layer(model, layer_name) if layer_name else default_layer(model)
    shape = tuple(view(model).outputs[path].shape[1:])
    if len(shape) != 3:
        raise ValueError(
            f"A class activation map needs a layer with (h, w, channels) output; {path!r} has {shape}. "
            "Pass layer_name= a convolution or pooling layer."
        )
    return path


def target_tuple(model: keras.Model, targets: int | Sequence[int], score_layer: str | None) -> tuple[bool, tuple]:
    """(single target?, targets as a tuple of ints), checked against the number of classes."""
    single = isinstance(targets, (int, np.integer))
    values = (int(targets),) if single else tuple(int(t) for t in targets)
    n_classes = view(model, score_layer=score_layer).scores.shape[-1]
    if not values or min(values) < 0 or max(values) >= n_classes:
        raise ValueError(f"Target classes must be in 0..{n_classes - 1}; got {list(values)}.")
    return single, values


def channel_weights(weighting: str, grads, acts, alpha_sum_to_one: bool = False):
    """Weights w (N, 1, 1, C) or (N, h, w, C) from gradients and activations (N, h, w, C) for one target (backend
    tensors, ``keras.ops``)."""
    if weighting == "gradcam":
        return ops.mean(grads, axis=(1, 2), keepdims=True)
    if weighting == "hirescam":
        return grads
    if weighting == "layercam":
        return ops.relu(grads)
    if weighting == "gradcam++":
        g2 = ops.square(grads)
        denominator = 2.0 * g2 + ops.sum(acts, axis=(1, 2), keepdims=True) * g2 * grads
        usable = ops.logical_and(ops.not_equal(grads, 0.0), ops.not_equal(denominator, 0.0))
        alpha = ops.where(usable, g2 / ops.where(usable, denominator, 1.0), 0.0)
        if alpha_sum_to_one:
            total = ops.sum(alpha, axis=(1, 2), keepdims=True)
            alpha = alpha / ops.where(total == 0.0, 1.0, total)
        return ops.sum(alpha * ops.relu(grads), axis=(1, 2), keepdims=True)
    raise ValueError(f"weighting={weighting!r}: choose one of {WEIGHTINGS}.")


def _cam_function(model, layer_path, score_layer, targets, weighting, relu, alpha_sum_to_one):
    """Compiled inputs -> raw maps (N, K, h, w), once per (layer, score layer, targets, weighting, options).

    The gradients with respect to the layer's activations are those with respect to the view's tap at that layer
    (``view(..., tap=layer_path)``), all K targets from one forward pass (``backend.gradients_per_output``)."""
    copy = view(model, score_layer=score_layer, tap=layer_path)
    key = ("cam", weighting, layer_path, targets, relu, alpha_sum_to_one, backend.NAME)
    if key not in copy.functions:
        probe = copy.probe([layer_path], with_scores=True)
        tap_shape = tuple(copy.tap.shape[1:])

        def target_scores(tap, x):
            activations, scores = probe([x, tap], training=False)
            scores = ops.cast(scores, "float32")
            return [ops.sum(scores[:, t]) for t in targets], ops.cast(activations, "float32")  # images independent

        gradients = backend.gradients_per_output(target_scores)

        def cams(x):
            grads, activations = gradients(ops.zeros((ops.shape(x)[0], *tap_shape), "float32"), x)
            maps = []
            for g in grads:
                weights = channel_weights(weighting, g, activations, alpha_sum_to_one)
                cam = ops.sum(weights * activations, axis=-1)  # (N, h, w)
                maps.append(ops.relu(cam) if relu else cam)
            return ops.stack(maps, axis=1)

        copy.functions[key] = backend.compiled(cams, copy.pairs, [input_signature(model)])
    return copy.functions[key]


def cam_raw(
    model: keras.Model,
    inputs: np.ndarray,
    targets: int | Sequence[int],
    weighting: str = "gradcam",
    layer_name: str | None = None,
    *,
    score_layer: str | None = None,
    relu: bool = True,
    alpha_sum_to_one: bool = False,
) -> np.ndarray:
    """Unnormalised CAM at the layer's resolution: (N, K, h, w), or (N, h, w) for one target (int).

    sum_k w_k A_k over the layer's channels, then a ReLU (unless ``relu=False``), with the weights w built from the
    gradients g of the class score with respect to the activations A; all targets from one forward pass.

    Args:
        model: a Keras 3 classifier with one image input and one output; its current weights are used.
        inputs: float32 (N, H, W, C) images in the model's input units (uint8-range pixels for the custom networks,
            which rescale inside; ``vgg19.preprocess`` output for VGG19).
        targets: class indices: one int gives (N, h, w); a sequence of K gives (N, K, h, w), in its order.
        weighting: "gradcam" (w_k = spatial mean of g_k), "gradcam++" (w_k = sum_ij alpha_k(i, j) ReLU(g_k(i, j))),
            "hirescam" (w = g, element-wise) or "layercam" (w = ReLU(g), element-wise); see the module docstring.
        layer_name: path (``"vgg19/block5_conv4"``) or unique name of a layer with an (h, w, channels) output; None: the
            last spatial feature map before the head (``default_layer``).
        score_layer: path or unique name of a layer whose output (N, classes) is taken as the class scores; None: the
            class scores before softmax, found by ``score_source``.
        relu: apply the final ReLU; False keeps the signed map.
        alpha_sum_to_one: "gradcam++" only: rescale alpha to sum 1 over the positions of each channel, as the authors'
            code and tf-keras-vis do.

    Returns:
        float32 maps at the layer's resolution, unscaled: >= 0 with ``relu``, signed without; for "gradcam", "hirescam"
        and "layercam" in units of the class score (gradient x activation). (N, h, w) for one target, (N, K, h, w) for K
        targets.

    Raises:
        ValueError: if ``weighting`` is not one of ``WEIGHTINGS``, a target is outside 0..classes-1
            (or ``targets`` is empty), or the layer's output is not (h, w, channels).
        ExplainError: if a layer name is unknown or ambiguous, ``layer_name=None`` and the model has no convolution
            layer, or ``model`` cannot be copied (see ``view.view``: not one image input and one output, a subclassed
            model, a layer used twice).
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting={weighting!r}: choose one of {WEIGHTINGS}.")
    path = cam_layer(model, layer_name)
    single, values = target_tuple(model, targets, score_layer)
    function = _cam_function(model, path, score_layer, values, weighting, bool(relu), bool(alpha_sum_to_one))
    maps = backend.to_numpy(function(np.asarray(inputs, np.float32)))
    return maps[:, 0] if single else maps


def _cam(model, inputs, targets, weighting, layer_name, score_layer, upsample, **options) -> np.ndarray:
    path = cam_layer(model, layer_name)
    raw = cam_raw(model, inputs, targets, weighting, path, score_layer=score_layer, **options)
    return raw if upsample is None else upsample_maps(raw, model, path, upsample)


def grad_cam_plus_plus(
    model: keras.Model,
    inputs: np.ndarray,
    targets: int | Sequence[int],
    layer_name: str | None = None,
    *,
    score_layer: str | None = None,
    upsample: str | None = DEFAULT_UPSAMPLING,
    alpha_sum_to_one: bool = False,
) -> np.ndarray:
    """Grad-CAM++ on the input grid scaled to [0, 1] ((N, K, H, W) or (N, H, W)); ``upsample=None``: raw (.., h, w).

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
        alpha_sum_to_one: rescale alpha to sum 1 over the positions of each channel, as the authors' code and
            tf-keras-vis do.

    Returns:
        float32: upsampled, (N, H, W) for one target or (N, K, H, W) for K, each map scaled to [0, 1] by its own maximum
        (an all-zero map stays zero); with ``upsample=None``, (N, h, w) or (N, K, h, w) at the layer's resolution, >= 0
        and unscaled.

    Raises:
        ValueError: if a target is outside 0..classes-1 (or ``targets`` is empty), the layer's output is not
            (h, w, channels), or ``upsample`` is neither one of ``UPSAMPLING`` nor None.
        ExplainError: if a layer name is unknown or ambiguous, ``layer_name=None`` and the model has no convolution
            layer, ``model`` cannot be copied (see ``view.view``: not one image input and one output, a subclassed
            model, a layer used twice), or (upsampled along the fields) the receptive fields cannot be computed
            (``models.receptive_field``: a layer it does not support, an input of unspecified size).
    """
    return _cam(
        model, inputs, targets, "gradcam++", layer_name, score_layer, upsample, alpha_sum_to_one=alpha_sum_to_one
    )


def hires_cam(
    model: keras.Model,
    inputs: np.ndarray,
    targets: int | Sequence[int],
    layer_name: str | None = None,
    *,
    score_layer: str | None = None,
    upsample: str | None = DEFAULT_UPSAMPLING,
    relu: bool = True,
) -> np.ndarray:
    """HiResCAM, sum_k g_k * A_k element-wise (``relu=False`` keeps the sign; then scaled to [-1, 1]).

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
        relu: apply the final ReLU; False keeps the signed map.

    Returns:
        float32: upsampled, (N, H, W) for one target or (N, K, H, W) for K, each map divided by its largest magnitude:
        in [0, 1] with ``relu``, in [-1, 1] without (an all-zero map stays zero); with ``upsample=None``, (N, h, w) or
        (N, K, h, w) at the layer's resolution, unscaled, in units of the class score (gradient x activation): >= 0 with
        ``relu``, signed without.

    Raises:
        ValueError: if a target is outside 0..classes-1 (or ``targets`` is empty), the layer's output is not
            (h, w, channels), or ``upsample`` is neither one of ``UPSAMPLING`` nor None.
        ExplainError: if a layer name is unknown or ambiguous, ``layer_name=None`` and the model has no convolution
            layer, ``model`` cannot be copied (see ``view.view``: not one image input and one output, a subclassed
            model, a layer used twice), or (upsampled along the fields) the receptive fields cannot be computed
            (``models.receptive_field``: a layer it does not support, an input of unspecified size).
    """
    return _cam(model, inputs, targets, "hirescam", layer_name, score_layer, upsample, relu=relu)


def layer_cam(
    model: keras.Model,
    inputs: np.ndarray,
    targets: int | Sequence[int],
    layer_name: str | None = None,
    *,
    score_layer: str | None = None,
    upsample: str | None = DEFAULT_UPSAMPLING,
) -> np.ndarray:
    """LayerCAM, ReLU(sum_k ReLU(g_k) * A_k) element-wise; any 4-D layer (earlier ones give finer maps).

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

    Returns:
        float32: upsampled, (N, H, W) for one target or (N, K, H, W) for K, each map scaled to [0, 1] by its own maximum
        (an all-zero map stays zero); with ``upsample=None``, (N, h, w) or (N, K, h, w) at the layer's resolution, >= 0
        and unscaled, in units of the class score (gradient x activation).

    Raises:
        ValueError: if a target is outside 0..classes-1 (or ``targets`` is empty), the layer's output is not
            (h, w, channels), or ``upsample`` is neither one of ``UPSAMPLING`` nor None.
        ExplainError: if a layer name is unknown or ambiguous, ``layer_name=None`` and the model has no convolution
            layer, ``model`` cannot be copied (see ``view.view``: not one image input and one output, a subclassed
            model, a layer used twice), or (upsampled along the fields) the receptive fields cannot be computed
            (``models.receptive_field``: a layer it does not support, an input of unspecified size).
    """
    return _cam(model, inputs, targets, "layercam", layer_name, score_layer, upsample)
