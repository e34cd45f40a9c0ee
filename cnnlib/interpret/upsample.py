"""Layer-resolution maps -> input grid: three rules, compared by the localisation benchmark.

- "field": each cell at the centre of its neuron's receptive field, linear between neighbouring
  centres; beyond the outermost centres the edge value fades as that neuron's effective receptive
  field (the Gaussian of ``receptive_field.effective_fields``, Luo et al., 2016) and stops where
  the neuron stops seeing pixels. One hot cell gives one compact blob on its field centre.
- "aligned": as "field" inside the centres, the edge value held beyond them. Separable holding
  turns one hot edge cell into a band and a hot corner cell into a filled corner rectangle (for
  arch3's conv4, centres 65..145 of 224, more than half the image is held).
- "resize": the plain bilinear image resize every public implementation uses; it spreads the
  cells evenly over the image, which is right for "same"-padded networks but moves the heat by
  up to half a field for "valid" ones.

For "same"-padded VGG19 the three agree inside the outermost centres (the outer 7.5 pixels
differ). ``DEFAULT_UPSAMPLING`` is the rule the localisation benchmark
(``interpret.checks.localisation``, results/localisation.json) found to localise best by its
criterion fixed beforehand, the pointing game: "aligned". "field" keeps more of the map's energy
inside the evidence box, but its peak sits on the edge neuron's field centre, while evidence
that only an edge neuron sees lies mostly between that centre and the border, where the held
plateau's centre is.
"""

from __future__ import annotations

import numpy as np

from cnnlib import backend
from cnnlib.backend import keras
from cnnlib.models.receptive_field import EffectiveField, effective_fields, field_centres

UPSAMPLING = ("field", "aligned", "resize")
DEFAULT_UPSAMPLING = "aligned"  # the benchmark's winner (tests/run/test_localisation_run.py checks it)


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


def fading_matrix(field: EffectiveField, size: int) -> np.ndarray:
    """(size, n) weights: linear between centres; beyond the outermost ones the edge cell's weight fades as its
    effective field, exp(-(p - c)^2 / (2 sigma^2)), and is 0 on pixels the edge neuron does not see."""
    weights = interpolation_matrix(field.centres, size)
    pixels = np.arange(size)
    for cell, beyond in ((0, pixels < field.centres[0]), (-1, pixels > field.centres[-1])):
        seen = (pixels >= field.first[cell]) & (pixels <= field.last[cell])
        fade = np.exp(-((pixels - field.centres[cell]) ** 2) / (2 * max(field.sigma, 1e-6) ** 2)) * seen
        weights[beyond, cell] = fade[beyond]
    return weights


def upsampling_matrices(model: keras.Model, layer_name: str, method: str) -> tuple[np.ndarray, np.ndarray]:
    """(H, h) and (W, w) matrices taking ``layer_name``'s grid to the input grid along the fields ("field" or
    "aligned"); the upsampled maps are ``rows @ maps @ cols.T``."""
    size = tuple(model.inputs[0].shape[1:3])
    if method == "field":
        fields = effective_fields(model, layer_name)
        return fading_matrix(fields[0], size[0]), fading_matrix(fields[1], size[1])
    if method == "aligned":
        row_centres, col_centres = field_centres(model, layer_name)
        return interpolation_matrix(row_centres, size[0]), interpolation_matrix(col_centres, size[1])
    raise ValueError(f"upsample={method!r}: choose one of {UPSAMPLING}.")


def normalise(up: np.ndarray) -> np.ndarray:
    """Each (H, W) map divided by its largest magnitude: [0, 1] for maps >= 0, [-1, 1] for signed ones.

    Zero maps stay zero."""
    flat = up.reshape(-1, *up.shape[-2:])
    peak = np.abs(flat).reshape(len(flat), -1).max(axis=1)
    return (flat / np.where(peak > 0, peak, 1)[:, None, None]).reshape(up.shape).astype(np.float32)


def upsample_raw(maps: np.ndarray, model: keras.Model, layer_name: str, method: str = DEFAULT_UPSAMPLING) -> np.ndarray:
    """(..., h, w) maps of ``layer_name`` -> (..., H, W) on the input grid, values as they are (not scaled)."""
    size = tuple(model.inputs[0].shape[1:3])
    if method == "resize":
        flat = maps.reshape(-1, *maps.shape[-2:], 1)
        return backend.resize_bilinear(flat, size)[..., 0].reshape(*maps.shape[:-2], *size)
    rows, cols = upsampling_matrices(model, layer_name, method)
    return rows @ maps @ cols.T  # two matrix products (a naive 4-index einsum is ~10x slower at 22 x 22)


def upsample_maps(
    maps: np.ndarray, model: keras.Model, layer_name: str, method: str = DEFAULT_UPSAMPLING
) -> np.ndarray:
    """(..., h, w) maps of ``layer_name`` -> (..., H, W) on the input grid, each divided by its largest magnitude.

    Args:
        maps: (..., h, w) maps on ``layer_name``'s grid, any leading axes ((N, h, w), (N, K, h, w), ...).
        model: the model the maps come from; its input size gives (H, W).
        layer_name: path or unique name of the layer the maps belong to (used by "field" and "aligned").
        method: "field": each cell at the centre of its neuron's receptive field, linear in between, fading beyond
            the outermost centres as the edge neuron's effective field; "aligned": the same with the edge value held
            beyond the outermost centres; "resize": the plain bilinear resize (``backend.resize_bilinear``).

    Returns:
        float32 (..., H, W), each (H, W) map divided by its largest magnitude: in [0, 1] for maps >= 0, in [-1, 1] for
        signed ones; an all-zero map stays zero.

    Raises:
        ValueError: if ``method`` is not one of ``UPSAMPLING``, or ("field", "aligned") ``layer_name`` has no spatial
            output.
        ExplainError: ("field", "aligned") if ``layer_name`` is unknown or ambiguous, or the receptive fields cannot
            be computed (``models.receptive_field``: a layer it does not support, an input of unspecified size).
    """
    return normalise(upsample_raw(maps, model, layer_name, method))
