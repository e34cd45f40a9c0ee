"""Activation maximisation (feature visualisation by optimisation; Olah et al., 2017, as in tf-keras-vis).

Gradient ascent on an input image for one objective: the mean activation of ``channel`` of
``layer_name`` over its positions, or (``layer_name=None``) the class score ``channel`` before
softmax. Starting from a seeded image (mid-range grey plus 5% Gaussian noise), each step:

1. transforms a copy with a random jitter (a roll by up to ``jitter`` pixels) and a random scaling (a bilinear
   zoom by a factor in ``scale``, centrally cropped or zero-padded back), so the image must work under small shifts
   and zooms (transformation robustness);
2. takes the gradient of the objective through the transform and steps by ``step_size`` x the
   value range x gradient / its standard deviation (a normalised ascent step);
3. every ``blur_every`` steps blurs the image with a Gaussian of ``blur_sigma`` pixels (frequency
   penalty, Yosinski et al., 2015) and clips it to ``value_range`` (the model's input units).

The random transforms are drawn on the host with NumPy (``numpy.random.default_rng(seed)``, after the start image)
and each is handed to the step as two small matrices, one per image axis (``transform_operators``): the jitter,
the zoom and the crop or pad are all linear in the image, so ``transformed = A_rows @ image @ A_columns^T`` per
colour, with fixed shapes. So one compiled step (``backend.compiled``, with the model's current weights) serves every
step, and the same seed gives the same transforms, hence the same image, on every Keras backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from cnnlib import backend
from cnnlib.backend import keras
from cnnlib.interpret.upsample import interpolation_matrix
from cnnlib.interpret.view import resolve_layer, view

__all__ = ["activation_maximisation", "gaussian_kernel", "maximise_channels", "transform_operators"]


def gaussian_kernel(sigma: float, colours: int) -> np.ndarray:
    """(k, k, colours, 1) depthwise Gaussian blur kernel, k = 2 ceil(2 sigma) + 1, summing to 1 per colour."""
    radius = max(1, int(np.ceil(2 * sigma)))
    axis = np.exp(-0.5 * (np.arange(-radius, radius + 1) / max(sigma, 1e-6)) ** 2)
    kernel = np.outer(axis, axis) / np.outer(axis, axis).sum()
    return np.tile(kernel[:, :, None, None], (1, 1, colours, 1)).astype(np.float32)


def _axis_operator(size: int, shift: int, zoomed: int) -> np.ndarray:
    """(size, size) float32 matrix of one axis: roll by ``shift``, bilinear resize to ``zoomed`` samples (half-pixel
    centres, edge clamped, no antialiasing), then central crop or zero pad back to ``size``."""
    roll = np.roll(np.eye(size), shift, axis=0)  # (roll @ v)[i] = v[(i - shift) mod size], as tf.roll / np.roll
    # source pixel j's centre on the zoomed grid is (j + 0.5) zoomed / size - 0.5: linear between centres, held at
    # the ends, is the half-pixel bilinear resize
    resize = interpolation_matrix((np.arange(size) + 0.5) * zoomed / size - 0.5, zoomed)
    back = np.zeros((size, zoomed))  # crop (zoomed > size) or pad (zoomed < size), centred as resize_with_crop_or_pad
    if zoomed >= size:
        offset = (zoomed - size) // 2
        back[np.arange(size), np.arange(size) + offset] = 1
    else:
        offset = (size - zoomed) // 2
        back[np.arange(zoomed) + offset, np.arange(zoomed)] = 1
    return (back @ resize @ roll).astype(np.float32)


def transform_operators(
    rng: np.random.Generator, height: int, width: int, jitter: int, scale: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """One random jitter-and-zoom as two matrices (rows (H, H), columns (W, W)): rows @ image @ columns^T.

    Args:
        rng: the ascent's generator; draws the shift (2 integers in -jitter..jitter, rows then columns) and then the
            zoom factor (uniform in ``scale``).
        height, width: the image's size in pixels.
        jitter: the largest shift, in pixels, each way.
        scale: (low, high) range of the zoom factor; the zoomed size is round(factor x size) per axis.

    Returns:
        float32 (H, H) and (W, W): each row of a matrix holds the (at most two) bilinear weights of one output pixel;
        a row of zeros is padding.
    """
    shift = rng.integers(-jitter, jitter + 1, size=2)
    factor = rng.uniform(scale[0], scale[1])
    return (
        _axis_operator(height, int(shift[0]), int(round(factor * height))),
        _axis_operator(width, int(shift[1]), int(round(factor * width))),
    )


def _step_function(model, layer_path, settings):
    """Compiled (image (1, H, W, C), objective weights, rows (H, H), columns (W, W), blur 0/1) -> (next image,
    objective on the transformed image)."""
    copy = view(model)
    key = ("actmax", backend.NAME, layer_path, settings)
    if key not in copy.functions:
        step_size, blur_sigma, low, high = settings
        target = copy.scores if layer_path is None else copy.outputs[layer_path]
        probe = keras.Model(copy.inputs, target)
        height, width, colours = model.inputs[0].shape[1:]
        kernel = gaussian_kernel(blur_sigma, colours)
        ops = keras.ops

        def objective(image, weights, rows, columns):
            transformed = ops.einsum("ij,bjkc,lk->bilc", rows, image, columns)
            out = ops.cast(probe(transformed, training=False), "float32")
            if len(out.shape) == 4:
                out = ops.mean(out, axis=(1, 2))
            value = ops.sum(out * weights)
            return value, value

        gradient = backend.gradient_function(objective)

        def step(image, weights, rows, columns, blur):
            grad, value = gradient(image, weights, rows, columns)
            image = image + step_size * (high - low) * grad / (ops.std(grad) + 1e-12)
            blurred = ops.depthwise_conv(image, ops.convert_to_tensor(kernel), strides=1, padding="same")
            image = ops.where(blur > 0, blurred, image)
            return ops.clip(image, low, high), value

        signature = [
            ((1, height, width, colours), "float32"),
            ((target.shape[-1],), "float32"),
            ((height, height), "float32"),
            ((width, width), "float32"),
            ((), "float32"),
        ]
        copy.functions[key] = backend.compiled(step, copy.pairs, signature)
    return copy.functions[key]


def activation_maximisation(
    model: keras.Model,
    channel: int,
    layer_name: str | None = None,
    *,
    steps: int = 128,
    seed: int = 0,
    step_size: float = 0.01,
    jitter: int = 8,
    scale: tuple[float, float] = (0.95, 1.05),
    blur_every: int = 4,
    blur_sigma: float = 1.0,
    value_range: tuple[float, float] = (0.0, 255.0),
) -> tuple[np.ndarray, np.ndarray]:
    """(image (H, W, C) in the model's input units, objective at each step (steps,)) for one channel or class.

    Gradient ascent from a seeded image (mid-range grey plus 5% Gaussian noise) under random jitter and scaling, with a
    Gaussian blur every ``blur_every`` steps and a clip to ``value_range`` after every step; each step is one compiled
    call with the model's current weights, and the same seed gives the same image on every backend.

    Args:
        model: a Keras 3 model with one image input and one output.
        channel: 0-based index of the target: a channel of ``layer_name`` (objective: its mean activation over the
            positions of an (h, w, channels) layer, or its value for a dense one) or, with ``layer_name=None``, a class
            (objective: its score before softmax, found by ``score_source``).
        layer_name: path or unique name of a layer with a 2-D (units) or (h, w, channels) output; None: the class
            scores.
        steps: ascent steps.
        seed: seed of the generator (``numpy.random.default_rng``) that draws the start image, then every step's
            random transform (``transform_operators``).
        step_size: each step moves the image by ``step_size`` x the value range x the gradient / its standard deviation.
        jitter: the largest random shift (a roll), in pixels, each way.
        scale: (low, high) range of the random zoom factor (the zoomed image cropped or padded back).
        blur_every: steps between Gaussian blurs; 0 (or less): no blur.
        blur_sigma: standard deviation of the blur, in pixels.
        value_range: (low, high), the input's valid range ((0, 255) for the project's networks, which rescale inside;
            about (-124, 152) for VGG19's ``preprocess`` output).

    Returns:
        (image, trace): the image float32 (H, W, C) in the model's input units, within ``value_range``; the objective
        float32 (steps,) at each step, measured on that step's transformed image before its update.

    Raises:
        ValueError: if ``channel`` is outside 0..channels-1 (or 0..classes-1), the layer's output is neither 2-D nor
            (h, w, channels), ``steps`` < 1, or ``value_range`` is not low < high.
        ExplainError: if ``layer_name`` is unknown or ambiguous, or ``model`` cannot be copied (see ``view.view``: not
            one image input and one output, a subclassed model, a layer used twice).
    """
    layer_path = None if layer_name is None else resolve_layer(model, layer_name)
    target = view(model).scores if layer_path is None else view(model).outputs[layer_path]
    size = target.shape[-1]
    what = "classes" if layer_path is None else f"channels in layer {layer_path!r}"
    if not 0 <= channel < size:
        raise ValueError(f"There are {size} {what}; {channel} does not exist.")
    if layer_path is not None and len(target.shape) not in (2, 4):
        raise ValueError(
            f"Layer {layer_path!r} has output shape {tuple(target.shape[1:])}; give a dense or (h, w, channels) layer."
        )
    if steps < 1 or value_range[1] <= value_range[0]:
        raise ValueError(f"Need steps >= 1 and value_range low < high; got steps={steps}, value_range={value_range}.")
    low, high = (float(v) for v in value_range)
    step = _step_function(model, layer_path, (float(step_size), float(blur_sigma), low, high))
    height, width = model.inputs[0].shape[1:3]
    rng = np.random.default_rng(seed)
    start = (low + high) / 2 + 0.05 * (high - low) * rng.standard_normal((1, *model.inputs[0].shape[1:]))
    image = np.clip(start, low, high).astype(np.float32)
    weights = np.eye(size, dtype=np.float32)[channel]
    trace = []
    for index in range(steps):
        rows, columns = transform_operators(rng, height, width, int(jitter), tuple(float(s) for s in scale))
        blur = np.float32(blur_every > 0 and (index + 1) % blur_every == 0)
        image, value = step(image, weights, rows, columns, blur)
        trace.append(value)
    return backend.to_numpy(image)[0], np.array([backend.to_numpy(v) for v in trace], np.float32)


def maximise_channels(
    model: keras.Model,
    layer_name: str,
    channels: Sequence[int],
    reference: Mapping[int, float],
    *,
    steps: int = 128,
    seed: int = 0,
    value_range: tuple[float, float] = (0.0, 255.0),
) -> tuple[np.ndarray, dict[int, dict]]:
    """``activation_maximisation`` for several channels of one layer, each measured against a reference activation.

    Args:
        model: a Keras 3 model with one image input; its current weights are used.
        layer_name: path or unique name of a layer with an (h, w, channels) output.
        channels: 0-based channel indices.
        reference: {channel: activation} to compare with, e.g. the strongest activation any training image gives
            the channel (``top_k_patches(...)[c][0].activation``).
        steps, seed, value_range: as ``activation_maximisation`` (the same seed for every channel).

    Returns:
        (images float32 (K, H, W, C) in the model's input units, in ``channels`` order; {channel: {"activation": the
        channel's largest value over positions on its synthetic image, "reference": ``reference[channel]``,
        "ratio": activation / reference}}).

    Raises:
        KeyError: if a channel has no reference value; others as ``activation_maximisation``.
    """
    from cnnlib.interpret.feature_maps import feature_maps

    missing = [int(c) for c in channels if int(c) not in reference]
    if missing:
        raise KeyError(f"No reference activation for channel(s) {missing} of {layer_name!r}.")
    images = np.stack(
        [
            activation_maximisation(model, int(c), layer_name, steps=steps, seed=seed, value_range=value_range)[0]
            for c in channels
        ]
    )
    maps = feature_maps(model, images, [layer_name])[layer_name]  # (K, h, w, C)
    measured = {}
    for k, c in enumerate(int(c) for c in channels):
        activation, base = float(maps[k, ..., c].max()), float(reference[c])
        measured[c] = {"activation": activation, "reference": base, "ratio": activation / base if base else None}
    return images, measured
