"""Guided backpropagation (Springenberg et al., 2015) through a guided copy of the model.

At every ReLU the backward pass lets a gradient through only where both the upstream
gradient and the forward input are positive (for a clipped ReLU such as ``relu6``: where
0 < x < max). The rule sits in a flat copy of the model (``view.view(model, guided=True)``)
whose variables are mapped onto the original's at every call, so maps always follow the
model's current weights. The forward pass is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cnnlib import backend
from cnnlib.backend import keras
from cnnlib.interpret.view import (
    check_channels,
    guided_clipped_relu,
    guided_relu,
    input_signature,
    output_layer,
    resolve_layer,
    view,
)

__all__ = ["guided_backprop", "guided_clipped_relu", "guided_copy", "guided_relu", "one_hot_scores"]


def guided_copy(model: keras.Model) -> keras.Model:
    """A standalone model input -> output with every ReLU guided and ``model``'s weights as they are now.

    Activations without a guided rule (swish, gelu, elu, LeakyReLU, ...) keep their ordinary gradient; a ``UserWarning``
    names them (once per process).

    Args:
        model: a Keras 3 model with one image input and one output; it is not modified.

    Returns:
        A ``keras.Model`` from ``model``'s input to its real output (softmax included, not the pre-softmax scores),
        nested models inlined, every ReLU replaced by the guided rule (``guided_relu``; ``relu6`` and
        ``ReLU(max_value=m)`` clipped). Its weights are a snapshot taken now: a later ``guided_copy(model)`` reassigns
        them, in the copies returned before too (they share their layers).

    Raises:
        ExplainError: if ``model`` cannot be copied (see ``view.view``: not one image input and one output, a subclassed
            model, a layer used twice).
    """
    output_path, _ = output_layer(model)
    copy = view(model, guided=True, score_layer=output_path)  # the real output, softmax included
    standalone = keras.Model(copy.inputs, copy.scores)
    for c, o in copy.pairs:
        c.assign(o.value)
    return standalone


def _gradient_function(model: keras.Model, layer_path: str | None):
    """Compiled (inputs, weights) -> d sum(target * weights) / d inputs through the guided copy.

    ``layer_path`` None means the class scores (before softmax).
    """
    copy = view(model, guided=True)
    key = ("guided", layer_path, backend.NAME)
    if key not in copy.functions:
        target = copy.scores if layer_path is None else copy.outputs[layer_path]
        probe = keras.Model(copy.inputs, target)

        def weighted_target(x, weights):
            return keras.ops.sum(keras.ops.cast(probe(x, training=False), "float32") * weights), ()

        gradient = backend.gradient_function(weighted_target)
        signature = [input_signature(model), ((None, *target.shape[1:]), "float32")]
        compiled = backend.compiled(lambda x, weights: gradient(x, weights)[0], copy.pairs, signature)
        copy.functions[key] = compiled
    return copy.functions[key]


def one_hot_scores(model: keras.Model, targets: Sequence[int], score_layer: str | None = None) -> np.ndarray:
    """(N, classes) float32 weights that pick each image's target class score (for ``guided_backprop``).

    Args:
        model: a Keras 3 classifier with one image input and one output.
        targets: one class index per image (length N).
        score_layer: path or unique name of the layer whose output counts as the class scores (its last axis gives the
            number of classes); None: the class scores before softmax, found by ``score_source``.

    Returns:
        float32 (N, classes), row i one-hot at ``targets[i]``.

    Raises:
        ValueError: if a target is outside 0..classes-1 (or ``targets`` is empty).
        ExplainError: if ``score_layer`` is unknown or ambiguous, or ``model`` cannot be copied (see ``view.view``: not
            one image input and one output, a subclassed model, a layer used twice).
    """
    n_classes = view(model, score_layer=score_layer).scores.shape[-1]
    targets = np.asarray(targets, int)
    if targets.min() < 0 or targets.max() >= n_classes:
        raise ValueError(f"Target classes must be in 0..{n_classes - 1}; got {sorted(set(targets.tolist()))}.")
    return np.eye(n_classes, dtype=np.float32)[targets]


def guided_backprop(
    model: keras.Model,
    inputs: np.ndarray,
    layer_name: str | None,
    channel: int | None = None,
    *,
    positions: Sequence[tuple[int, int]] | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Guided gradient of one neuron of ``layer_name`` with respect to the inputs: float32 (N, H, W, C).

    Backpropagates through the guided copy of the model (``view.view(model, guided=True)``) with its current weights;
    images are independent. Activations without a guided rule (swish, gelu, elu, LeakyReLU, ...) keep their ordinary
    gradient; a ``UserWarning`` names them (once per process).

    Args:
        model: a Keras 3 classifier with one image input and one output; its current weights are used.
        inputs: float32 (N, H, W, C) images in the model's input units (uint8-range pixels for the custom networks,
            which rescale inside; ``vgg19.preprocess`` output for VGG19).
        layer_name: path or unique name of the layer to start from; None: the class scores before softmax (found by
            ``score_source``), which needs ``weights``.
        channel: 0-based channel of the neuron; needed when ``weights`` is None.
        positions: one (row, col) per image on the layer's (h, w) grid; None: the channel's argmax in each image (the
            first in row-major order on ties).
        weights: instead of one neuron, any weighting of the target: (N, *layer output shape), or (N, classes) with
            ``layer_name=None`` (e.g. ``one_hot_scores``); ``channel`` and ``positions`` are then ignored.

    Returns:
        float32 (N, H, W, C): per image, the guided gradient of sum(weights x target) with respect to each input value;
        signed and unscaled, in units of the target per input unit.

    Raises:
        ValueError: if ``weights`` is None and ``layer_name`` or ``channel`` is None, the layer's output is not
            (h, w, channels), or ``channel`` is outside 0..channels-1.
        ExplainError: if ``layer_name`` is unknown or ambiguous, or ``model`` cannot be copied (see ``view.view``: not
            one image input and one output, a subclassed model, a layer used twice).
    """
    from cnnlib.interpret.feature_maps import feature_maps

    x = np.asarray(inputs, np.float32)
    path = None if layer_name is None else resolve_layer(model, layer_name)
    if weights is None:
        if channel is None or path is None:
            raise ValueError("Give a layer and a channel (and optionally positions), or explicit weights.")
        shape = tuple(view(model).outputs[path].shape[1:])
        if len(shape) != 3:
            raise ValueError(f"Layer {path!r} has output shape {shape}; a neuron target needs (h, w, channels).")
        if not 0 <= channel < shape[-1]:
            raise ValueError(f"Layer {path!r} has {shape[-1]} channels; channel {channel} does not exist.")
        if positions is None:
            acts = feature_maps(model, x, [path])[path][..., channel]
            positions = [np.unravel_index(int(np.argmax(a)), a.shape) for a in acts]
        weights = np.zeros((len(x), *shape), np.float32)
        for i, (row, col) in enumerate(positions):
            weights[i, row, col, channel] = 1.0
    return np.asarray(_gradient_function(model, path)(x, np.asarray(weights, np.float32)))


def guided_backprop_channels(
    model: keras.Model, inputs: np.ndarray, layer_name: str, channels: Sequence[int]
) -> tuple[dict[int, np.ndarray], dict[int, float]]:
    """For each channel, the guided backprop of its argmax neuron on ``inputs[0]`` and that neuron's activation.

    Args:
        model: a Keras 3 classifier with one image input and one output; its current weights are used.
        inputs: float32 (N, H, W, C) images in the model's input units (uint8-range pixels for the custom networks,
            which rescale inside; ``vgg19.preprocess`` output for VGG19); only ``inputs[0]`` is used.
        layer_name: path or unique name of a layer with an (h, w, channels) output.
        channels: 0-based channel indices.

    Returns:
        ({channel: guided gradient (H, W, C) float32}, {channel: peak activation}), keyed by ``int(channel)``: for each
        channel, ``guided_backprop`` from the neuron at its argmax on ``inputs[0]`` (signed, unscaled) and that neuron's
        activation.

    Raises:
        ValueError: if a channel is not in 0..channels-1, or the layer's output is not (h, w, channels).
        ExplainError: if ``layer_name`` is unknown or ambiguous, or ``model`` cannot be copied (see ``view.view``: not
            one image input and one output, a subclassed model, a layer used twice).
    """
    from cnnlib.interpret.feature_maps import feature_maps

    x = np.asarray(inputs[:1], np.float32)
    acts = feature_maps(model, x, [layer_name])[layer_name][0]
    check_channels(layer_name, acts.shape[-1], channels)
    peaks = {int(c): float(acts[..., c].max()) for c in channels}
    maps = {int(c): guided_backprop(model, x, layer_name, channel=int(c))[0] for c in channels}
    return maps, peaks
