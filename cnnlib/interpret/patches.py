"""Input patches that maximally activate a channel: the reference's per-image argmax, and top-k over a set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnnlib._tensorflow import keras
from cnnlib.interpret.feature_maps import activations_function, feature_maps
from cnnlib.interpret.view import resolve_layer, view
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


def argmax_patches(model: keras.Model, inputs: np.ndarray, layer_name: str, channels: Sequence[int]) -> list[Patch]:
    """The reference's method on one input (N = 1): each channel's argmax neuron, projected to the input."""
    acts = feature_maps(model, inputs[:1], [layer_name])[layer_name][0]
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

    Computed in batches, keeping only the maxima, so memory stays at (N, C).
    """
    return channel_maxima_of_layers(model, inputs, [layer_name], batch_size)[layer_name]


def channel_maxima_of_layers(
    model: keras.Model, inputs: np.ndarray, layer_names: Sequence[str], batch_size: int = 8, cache: bool = False
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``channel_maxima`` of several layers from one forward pass per batch: {layer: (values, positions)}.

    The same bits as one call per layer (the layers' activations do not depend on which outputs the
    probe has). With ``cache`` each input's maxima are stored per image under ``config.cache_dir()``,
    keyed by the input's bytes, the model's weights and the layers (``feature_cache``), so a later call
    with the same weights computes only new inputs.
    Batches of 8 by default: VGG19's first activations take 0.1 GB per 8 images (measured at 224 px:
    about 0.22 GB less peak memory than 16, which took 0.6 GB less than 32, all at the same speed); the
    maxima do not depend on the batch size (the same bits, tested).
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
    """The ``n`` channels with the highest mean per-image maximum (``channel_maxima`` values), strongest first."""
    return [int(c) for c in np.argsort(-maxima.mean(axis=0), kind="stable")[:n]]


def top_k_patches(
    model: keras.Model,
    inputs: np.ndarray,
    layer_name: str,
    channels: Sequence[int],
    k: int = 9,
    batch_size: int = 8,
    maxima: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[int, list[Patch]]:
    """For each channel, the ``k`` images of ``inputs`` where it fires most (one patch per image, at its argmax).

    Pass ``maxima`` (from ``channel_maxima``) to reuse a forward pass. Returns {channel: patches
    sorted by activation, highest first}.
    """
    values, positions = maxima if maxima is not None else channel_maxima(model, inputs, layer_name, batch_size)
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
    """Argmax patches of the ``n`` channels of ``layer_name`` with the highest peak on ``inputs[0]``."""
    channels = strongest_channels(channel_maxima(model, inputs[:1], layer_name)[0], n)
    return argmax_patches(model, inputs[:1], layer_name, channels)
