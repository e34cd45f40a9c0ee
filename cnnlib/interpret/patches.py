"""Input patches that maximally activate a channel: the reference's per-image argmax, and top-k over a set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnnlib.backend import keras
from cnnlib.interpret.feature_maps import activations_function, feature_maps
from cnnlib.interpret.view import check_channels, resolve_layer, view
from cnnlib.models.forward import in_fixed_batches
from cnnlib.models.receptive_field import dependency_boxes


@dataclass(frozen=True)
class Patch:
    """Where a channel fired most: image index, neuron position, activation, input box (half-open)."""

    channel: int
    image: int
    row: int
    col: int
    activation: float
    box: tuple[int, int, int, int]  # (top, left, bottom, right) in input pixels: the exact dependency box

    def crop(self, images: np.ndarray) -> np.ndarray:
        """The patch pixels from ``images[self.image]``: (bottom - top, right - left, 3)."""
        top, left, bottom, right = self.box
        return images[self.image, top:bottom, left:right]


def argmax_patches(
    model: keras.Model,
    inputs: np.ndarray,
    layer_name: str,
    channels: Sequence[int],
    *,
    activations: np.ndarray | None = None,
) -> list[Patch]:
    """The reference's method on one input (N = 1): each channel's argmax neuron, projected to the input.

    Args:
        model: a Keras 3 model; its current weights are used.
        inputs: (N, H, W, C) images in the model's input units (uint8-range pixels for the custom networks,
            ``vgg19.preprocess`` output for VGG19), cast to float32; only ``inputs[0]`` is used.
        layer_name: path or unique name of a layer with an (h, w, channels) output.
        channels: 0-based channel indices.
        activations: (1, h, w, C) activations of the layer for ``inputs[:1]``, to reuse a forward pass (the
            explorer keeps them per image); None: computed here.

    Returns:
        One ``Patch`` per channel, in the order of ``channels``: image 0, the (row, col) of the channel's largest
        activation (the first in row-major order on ties), that activation, and the neuron's exact dependency box
        (top, left, bottom, right), half-open, in input pixels ((0, 0, 0, 0) for a neuron that sees only padding).

    Raises:
        ValueError: if a channel is not in 0..channels-1, or the layer's output has no spatial positions (after a
            flatten or global pooling).
        ExplainError: if ``layer_name`` is unknown or ambiguous, ``model`` cannot be copied (see ``view.view``: not one
            image input and one output, a subclassed model, a layer used twice), or the receptive fields cannot be
            computed (``models.receptive_field``: a layer it does not support, an input of unspecified size).
    """
    if activations is None:
        activations = feature_maps(model, inputs[:1], [layer_name])[layer_name]
    acts = np.asarray(activations)[0]
    check_channels(layer_name, acts.shape[-1], channels)
    box = dependency_boxes(model, layer_name)
    out = []
    for ch in channels:
        row, col = np.unravel_index(int(np.argmax(acts[..., ch])), acts.shape[:2])
        out.append(Patch(ch, 0, int(row), int(col), float(acts[row, col, ch]), box(int(row), int(col))))
    return out


def channel_maxima(
    model: keras.Model, inputs: np.ndarray, layer_name: str, batch_size: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Each image's maximum per channel and where it is: values (N, C) float32, flat positions (N, C) int.

    Computed in batches, keeping only the maxima, so memory stays at (N, C) (plus one batch's activations).

    Args:
        model: a Keras 3 model; its current weights are used.
        inputs: (N, H, W, C) images in the model's input units (uint8-range pixels for the custom networks,
            ``vgg19.preprocess`` output for VGG19), cast to float32 batch by batch.
        layer_name: path or unique name of a layer with an (h, w, channels) output.
        batch_size: unused here (no cache): the forward passes take 8 images each (``models.forward.FIXED_ROWS``), so an
            image's maxima do not depend on the rest of the batch.

    Returns:
        (values, positions), C the layer's channels: values float32 (N, C), each channel's largest activation in each
        image; positions int64 (N, C), where it is, as the flat index row * w + col on the layer's (h, w) grid
        (the first on ties).

    Raises:
        ExplainError: if ``layer_name`` is unknown or ambiguous, or ``model`` cannot be copied (see ``view.view``: not
            one image input and one output, a subclassed model, a layer used twice).
    """
    return channel_maxima_of_layers(model, inputs, [layer_name], batch_size)[layer_name]


def channel_maxima_of_layers(
    model: keras.Model, inputs: np.ndarray, layer_names: Sequence[str], batch_size: int = 8, cache: bool = False
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``channel_maxima`` of several layers from one forward pass per batch: {layer: (values, positions)}.

    The same bits as one call per layer (the layers' activations do not depend on which outputs the probe has). The
    forward passes take 8 images each (``models.forward.FIXED_ROWS``, whatever ``batch_size``): VGG19's first
    activations take 0.1 GB per 8 images (measured at 224 px: about 0.22 GB less peak memory than 16, which took 0.6 GB
    less than 32, all at the same speed); the maxima do not depend on the batch size (the same bits, tested).

    Args:
        model: a Keras 3 model; its current weights are used.
        inputs: (N, H, W, C) images in the model's input units (uint8-range pixels for the custom networks,
            ``vgg19.preprocess`` output for VGG19), cast to float32 batch by batch (with ``cache``, a memory map is read
            one image at a time).
        layer_names: layer paths or names unique in the model, each with an (h, w, channels) output.
        batch_size: with ``cache``, how many uncached images are computed per chunk; unused without it.
        cache: store each input's maxima per image under ``config.cache_dir()``, keyed by the input's bytes, the model's
            weights and the layers (``feature_cache``), so a later call with the same weights computes only new inputs.

    Returns:
        {name as given: (values float32 (N, C), positions int64 (N, C))} with C that layer's channels, as in
        ``channel_maxima``.

    Raises:
        ExplainError: if a layer name is unknown or ambiguous, or ``model`` cannot be copied (see ``view.view``: not one
            image input and one output, a subclassed model, a layer used twice).
    """
    from cnnlib.models import feature_cache  # the cache needs config; interpret itself does not

    probe = activations_function(model, layer_names)
    channels = [int(view(model).outputs[resolve_layer(model, name)].shape[-1]) for name in layer_names]

    def forward(batch: np.ndarray) -> np.ndarray:  # (n, 2 * sum C): per layer, maxima then flat positions
        parts = []
        for acts in probe(np.asarray(batch, np.float32)):
            flat = np.asarray(acts).reshape(len(batch), -1, acts.shape[-1])  # (n, h*w, C)
            parts += [flat.max(axis=1), flat.argmax(axis=1).astype(np.float32)]  # positions < 2**24: exact
        return np.concatenate(parts, axis=1)

    width = 2 * sum(channels)
    if cache:
        identity = feature_cache.identity_key(
            "cnnlib.interpret.patches",
            weights=feature_cache.weights_digest(model),
            layers=list(layer_names),
            summary="channel maxima",
        )
        packed, _ = feature_cache.cached_image_features(
            forward, identity, inputs, (width,), batch_size, "channel maxima"
        )
    else:
        packed = in_fixed_batches(forward, inputs).reshape(len(inputs), width)
    out, start = {}, 0
    for name, c in zip(layer_names, channels):
        out[name] = (packed[:, start : start + c], packed[:, start + c : start + 2 * c].astype(np.int64))
        start += 2 * c
    return out


def strongest_channels(maxima: np.ndarray, n: int) -> list[int]:
    """The ``n`` channels with the highest mean per-image maximum (``channel_maxima`` values), strongest first.

    Args:
        maxima: (N, C) per-image channel maxima, the values from ``channel_maxima``.
        n: how many channels to return.

    Returns:
        Up to ``n`` 0-based channel indices (all C when n > C), by descending mean over the images; ties keep the lower
        index first.
    """
    return [int(c) for c in np.argsort(-maxima.mean(axis=0), kind="stable")[:n]]


def top_k_patches(
    model: keras.Model,
    inputs: np.ndarray,
    layer_name: str,
    channels: Sequence[int],
    *,
    k: int = 9,
    batch_size: int = 8,
    maxima: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[int, list[Patch]]:
    """For each channel, the ``k`` images of ``inputs`` where it fires most (one patch per image, at its argmax).

    Args:
        model: a Keras 3 model; its current weights are used.
        inputs: (N, H, W, C) images in the model's input units (uint8-range pixels for the custom networks,
            ``vgg19.preprocess`` output for VGG19), cast to float32; ``Patch.image`` indexes them.
        layer_name: path or unique name of a layer with an (h, w, channels) output.
        channels: 0-based channel indices.
        k: images per channel (all N when N < k).
        batch_size: passed to ``channel_maxima`` when ``maxima`` is None (where it is unused).
        maxima: (values, positions) from ``channel_maxima`` of the same inputs and layer, to reuse a forward pass; None:
            computed here.

    Returns:
        {channel: up to ``k`` ``Patch`` objects sorted by activation, highest first (ties: the lower image index
        first)}, each with the image index, the (row, col) of the channel's maximum in that image, the activation and
        the neuron's exact dependency box (top, left, bottom, right), half-open, in input pixels.

    Raises:
        IndexError: if the layer's output has no (h, w) axes.
        ValueError: if a channel is not in 0..channels-1, or the layer's neurons have no receptive field (a global
            pooling with ``keepdims``, say).
        ExplainError: if ``layer_name`` is unknown or ambiguous, ``model`` cannot be copied (see ``view.view``: not one
            image input and one output, a subclassed model, a layer used twice), or the receptive fields cannot be
            computed (``models.receptive_field``: a layer it does not support, an input of unspecified size).
    """
    values, positions = maxima if maxima is not None else channel_maxima(model, inputs, layer_name, batch_size)
    check_channels(layer_name, values.shape[1], channels)
    width = view(model).outputs[resolve_layer(model, layer_name)].shape[2]
    box = dependency_boxes(model, layer_name)
    result = {}
    for ch in channels:
        order = np.argsort(-values[:, ch], kind="stable")[:k]
        result[ch] = []
        for i in order:
            row, col = divmod(int(positions[i, ch]), width)
            result[ch].append(Patch(ch, int(i), row, col, float(values[i, ch]), box(row, col)))
    return result


def strongest_argmax_patches(model: keras.Model, inputs: np.ndarray, layer_name: str, n: int) -> list[Patch]:
    """Argmax patches of the ``n`` channels of ``layer_name`` with the highest peak on ``inputs[0]``.

    Args:
        model: a Keras 3 model; its current weights are used.
        inputs: (N, H, W, C) images in the model's input units (uint8-range pixels for the custom networks,
            ``vgg19.preprocess`` output for VGG19), cast to float32; only ``inputs[0]`` is used.
        layer_name: path or unique name of a layer with an (h, w, channels) output.
        n: how many channels.

    Returns:
        Up to ``n`` ``Patch`` objects (as ``argmax_patches``), strongest channel first (ties: the lower index first).

    Raises:
        ValueError: if the layer's output has no spatial positions (after a flatten or global pooling).
        ExplainError: if ``layer_name`` is unknown or ambiguous, ``model`` cannot be copied (see ``view.view``: not one
            image input and one output, a subclassed model, a layer used twice), or the receptive fields cannot be
            computed (``models.receptive_field``: a layer it does not support, an input of unspecified size).
    """
    channels = strongest_channels(channel_maxima(model, inputs[:1], layer_name)[0], n)
    return argmax_patches(model, inputs[:1], layer_name, channels)
