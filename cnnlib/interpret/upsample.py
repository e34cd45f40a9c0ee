"""Layer-resolution maps -> input grid: along the receptive fields ("aligned") or a plain bilinear resize.

"aligned" (default) puts each cell at the centre of its neuron's receptive field and
interpolates linearly between centres; beyond the outermost centres the edge value is held,
since those pixels still lie inside the edge neurons' fields (a fade to zero would claim they
do not matter, which nothing shows). "resize" is the plain bilinear image resize every public
implementation uses; it spreads the cells evenly over the image, which is right for
"same"-padded networks (VGG19: both agree) but moves the heat by up to half a field for
"valid" ones.
"""

from __future__ import annotations

import numpy as np

from cnnlib._tensorflow import keras, tf
from cnnlib.models.receptive_field import field_centres

UPSAMPLING = ("aligned", "resize")


def interpolation_matrix(centres: np.ndarray, size: int) -> np.ndarray:
    """(size, n) weights: pixel p gets the linear interpolation of the cells whose centres bracket it."""
    n = len(centres)
    weights = np.zeros((size, n))
    if n == 1:
        weights[:, 0] = 1.0
        return weights
    position = np.interp(np.arange(size), centres, np.arange(n))  # fractional cell index, held at the ends
    low = np.clip(np.floor(position).astype(int), 0, n - 2)
    frac = position - low
    weights[np.arange(size), low] = 1 - frac
    weights[np.arange(size), low + 1] += frac
    return weights


def aligned_matrices(model: keras.Model, layer_name: str) -> tuple[np.ndarray, np.ndarray]:
    """(H, h) and (W, w) matrices taking ``layer_name``'s grid to the input grid along the fields."""
    size = tuple(model.inputs[0].shape[1:3])
    row_centres, col_centres = field_centres(model, layer_name)
    return interpolation_matrix(row_centres, size[0]), interpolation_matrix(col_centres, size[1])


def normalise(up: np.ndarray) -> np.ndarray:
    """Each (H, W) map divided by its largest magnitude: [0, 1] for maps >= 0, [-1, 1] for signed ones.

    Zero maps stay zero."""
    flat = up.reshape(-1, *up.shape[-2:])
    peak = np.abs(flat).reshape(len(flat), -1).max(axis=1)
    return (flat / np.where(peak > 0, peak, 1)[:, None, None]).reshape(up.shape).astype(np.float32)


def upsample_raw(maps: np.ndarray, model: keras.Model, layer_name: str, method: str = "aligned") -> np.ndarray:
    """(..., h, w) maps of ``layer_name`` -> (..., H, W) on the input grid, values as they are (not scaled)."""
    size = tuple(model.inputs[0].shape[1:3])
    if method == "resize":
        flat = maps.reshape(-1, *maps.shape[-2:], 1)
        return tf.image.resize(flat, size, method="bilinear").numpy()[..., 0].reshape(*maps.shape[:-2], *size)
    if method == "aligned":
        rows, cols = aligned_matrices(model, layer_name)
        return rows @ maps @ cols.T  # two matrix products (a naive 4-index einsum is ~10x slower at 22 x 22)
    raise ValueError(f"upsample={method!r}: choose one of {UPSAMPLING}.")


def upsample_maps(maps: np.ndarray, model: keras.Model, layer_name: str, method: str = "aligned") -> np.ndarray:
    """(..., h, w) maps of ``layer_name`` -> (..., H, W) on the input grid, each divided by its largest magnitude.

    Args:
        maps: (..., h, w) maps on ``layer_name``'s grid, any leading axes ((N, h, w), (N, K, h, w), ...).
        model: the model the maps come from; its input size gives (H, W).
        layer_name: path or unique name of the layer the maps belong to (used by "aligned" only).
        method: "aligned": each cell at the centre of its neuron's receptive field, linear in between, the edge value
            held beyond the outermost centres; "resize": the plain bilinear ``tf.image.resize``.

    Returns:
        float32 (..., H, W), each (H, W) map divided by its largest magnitude: in [0, 1] for maps >= 0, in [-1, 1] for
        signed ones; an all-zero map stays zero.

    Raises:
        ValueError: if ``method`` is neither "aligned" nor "resize", or ("aligned") ``layer_name`` has no spatial
            output.
        ExplainError: ("aligned") if ``layer_name`` is unknown or ambiguous, or the receptive fields cannot be computed
            (``models.receptive_field``: a layer it does not support, an input of unspecified size).
    """
    return normalise(upsample_raw(maps, model, layer_name, method))
