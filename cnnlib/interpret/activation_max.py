"""Activation maximisation (feature visualisation by optimisation; Olah et al., 2017, as in tf-keras-vis).

Gradient ascent on an input image for one objective: the mean activation of ``channel`` of
``layer_name`` over its positions, or (``layer_name=None``) the class score ``channel`` before
softmax. Starting from a seeded image (mid-range grey plus 5% Gaussian noise), each step:

1. transforms a copy with a random jitter (``tf.roll`` by up to ``jitter`` pixels) and a random
   scaling (factor in ``scale``, then cropped or padded back), so the image must work under small
   shifts and zooms (transformation robustness);
2. takes the gradient of the objective through the transform and steps by ``step_size`` x the
   value range x gradient / its standard deviation (a normalised ascent step);
3. every ``blur_every`` steps blurs the image with a Gaussian of ``blur_sigma`` pixels (frequency
   penalty, Yosinski et al., 2015) and clips it to ``value_range`` (the model's input units).

The whole loop is one compiled graph (``tf.function``), with the model's current weights; all
randomness comes from stateless ops seeded by (``seed``, step), so the same seed gives the same image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from cnnlib import backend
from cnnlib.backend import keras
from cnnlib.interpret.view import resolve_layer, view

__all__ = ["activation_maximisation", "gaussian_kernel", "maximise_channels"]


def gaussian_kernel(sigma: float, colours: int) -> np.ndarray:
    """(k, k, colours, 1) depthwise Gaussian blur kernel, k = 2 ceil(2 sigma) + 1, summing to 1 per colour."""
    radius = max(1, int(np.ceil(2 * sigma)))
    axis = np.exp(-0.5 * (np.arange(-radius, radius + 1) / max(sigma, 1e-6)) ** 2)
    kernel = np.outer(axis, axis) / np.outer(axis, axis).sum()
    return np.tile(kernel[:, :, None, None], (1, 1, colours, 1)).astype(np.float32)


def _ascent_function(model, layer_path, settings):
    """Compiled (start (1, H, W, C), objective weights, steps, seed) -> (image, objective per step)."""
    if backend.NAME != "tensorflow":
        raise RuntimeError(
            f"Activation maximisation runs on TensorFlow only so far (its ascent is one TensorFlow graph with "
            f"TensorFlow's stateless random numbers); this process runs Keras on {backend.NAME!r}. Run it with "
            "KERAS_BACKEND=tensorflow."
        )
    from cnnlib._tensorflow import tf  # the one module not yet on the backend layer (issue 31)

    copy = view(model)
    key = ("actmax", layer_path, settings)
    if key not in copy.functions:
        jitter, scale, step_size, blur_every, blur_sigma, low, high = settings
        target = copy.scores if layer_path is None else copy.outputs[layer_path]
        probe = keras.Model(copy.inputs, target)
        height, width, colours = model.inputs[0].shape[1:]
        kernel = tf.constant(gaussian_kernel(blur_sigma, colours))
        span = high - low

        def objective(image, weights):
            with copy.current():
                out = tf.cast(probe(image, training=False), tf.float32)
            if len(out.shape) == 4:
                out = tf.reduce_mean(out, axis=(1, 2))
            return tf.reduce_sum(out * weights)

        def transform(image, seed):
            shift = tf.random.stateless_uniform([2], seed, -jitter, jitter + 1, dtype=tf.int32)
            moved = tf.roll(image, shift, axis=[1, 2])
            factor = tf.random.stateless_uniform([], seed + 1, scale[0], scale[1])
            size = tf.cast(tf.round(factor * tf.constant([height, width], tf.float32)), tf.int32)
            return tf.image.resize_with_crop_or_pad(tf.image.resize(moved, size, method="bilinear"), height, width)

        @tf.function(
            input_signature=[
                tf.TensorSpec([1, height, width, colours], tf.float32),
                tf.TensorSpec([target.shape[-1]], tf.float32),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([], tf.int32),
            ]
        )
        def ascend(start, weights, steps, seed):
            image = tf.identity(start)
            trace = tf.TensorArray(tf.float32, size=steps)
            for step in tf.range(steps):
                step_seed = tf.stack([seed, step])
                with tf.GradientTape() as tape:
                    tape.watch(image)
                    value = objective(transform(image, step_seed), weights)
                grad = tape.gradient(value, image)
                image = image + step_size * span * grad / (tf.math.reduce_std(grad) + 1e-12)
                if blur_every > 0 and (step + 1) % blur_every == 0:  # autograph: a graph conditional
                    image = tf.nn.depthwise_conv2d(image, kernel, [1, 1, 1, 1], "SAME")
                image = tf.clip_by_value(image, low, high)
                trace = trace.write(step, value)
            return image, trace.stack()

        copy.functions[key] = ascend
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
    Gaussian blur every ``blur_every`` steps and a clip to ``value_range`` after every step; the whole loop is one
    compiled graph with the model's current weights, and the same seed gives the same image.

    Args:
        model: a Keras 3 model with one image input and one output.
        channel: 0-based index of the target: a channel of ``layer_name`` (objective: its mean activation over the
            positions of an (h, w, channels) layer, or its value for a dense one) or, with ``layer_name=None``, a class
            (objective: its score before softmax, found by ``score_source``).
        layer_name: path or unique name of a layer with a 2-D (units) or (h, w, channels) output; None: the class
            scores.
        steps: ascent steps.
        seed: seed of the start image (``numpy.random.default_rng``) and of every step's random transform.
        step_size: each step moves the image by ``step_size`` x the value range x the gradient / its standard deviation.
        jitter: the largest random shift (``tf.roll``), in pixels, each way.
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
    settings = (
        int(jitter),
        tuple(float(s) for s in scale),
        float(step_size),
        int(blur_every),
        float(blur_sigma),
        low,
        high,
    )
    shape = (1, *model.inputs[0].shape[1:])
    start = (low + high) / 2 + 0.05 * (high - low) * np.random.default_rng(seed).standard_normal(shape)
    weights = np.eye(size, dtype=np.float32)[channel]
    image, trace = _ascent_function(model, layer_path, settings)(
        np.clip(start, low, high).astype(np.float32), weights, np.int32(steps), np.int32(seed)
    )
    return np.asarray(image)[0], np.asarray(trace)


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
