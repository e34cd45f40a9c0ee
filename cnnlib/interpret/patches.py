"""Input patches that maximally activate a channel: the reference's per-image argmax, and top-k over a set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnnlib._tensorflow import keras
from cnnlib.interpret.feature_maps import activations_function, feature_maps
from cnnlib.interpret.view import resolve_layer, view
from cnnlib.receptive_field import dependency_boxes


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
    model: keras.Model, inputs: np.ndarray, layer_name: str, batch_size: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Each image's maximum per channel and where it is: values (N, C) float32, flat positions (N, C) int.

    Computed in batches, keeping only the maxima, so memory stays at (N, C).
    """
    best_value, best_index = [], []
    probe = activations_function(model, [layer_name])
    for start in range(0, len(inputs), batch_size):
        acts = np.asarray(probe(np.asarray(inputs[start : start + batch_size], np.float32))[0])
        flat = acts.reshape(len(acts), -1, acts.shape[-1])  # (n, h*w, C)
        best_index.append(flat.argmax(axis=1))
        best_value.append(flat.max(axis=1))
    return np.concatenate(best_value), np.concatenate(best_index)


def strongest_channels(maxima: np.ndarray, n: int) -> list[int]:
    """The ``n`` channels with the highest mean per-image maximum (``channel_maxima`` values), strongest first."""
    return [int(c) for c in np.argsort(-maxima.mean(axis=0), kind="stable")[:n]]


def top_k_patches(
    model: keras.Model,
    inputs: np.ndarray,
    layer_name: str,
    channels: Sequence[int],
    k: int = 9,
    batch_size: int = 32,
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
