"""Occlusion (Zeiler & Fergus, 2014): how much the class score drops when a patch of the image is hidden.

A ``patch`` x ``patch`` square (or (rows, cols)) slides with ``stride`` over the image; at each
position the patch's pixels are set to ``fill`` (a value, or one per colour channel) and the
model is run. A pixel's attribution is the mean, over the positions whose patch covers it, of
y_c(x) - y_c(x occluded), with y_c the class score before softmax and the model's current weights
(Captum's convention). Positions start at 0 every ``stride`` pixels, plus one flush with the far
edge when the stride does not reach it, so every pixel is covered. Batched: ``batch_size``
occluded copies per forward pass; all targets come from the same passes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cnnlib import backend
from cnnlib.backend import keras
from cnnlib.interpret.cam import target_tuple
from cnnlib.interpret.view import view
from cnnlib.models.forward import in_fixed_batches

__all__ = ["occlusion", "patch_positions"]


def patch_positions(size: int, patch: int, stride: int) -> list[int]:
    """Start offsets along one axis: 0, stride, 2 stride, ... and size - patch if the last one falls short."""
    if not 1 <= patch <= size or stride < 1:
        raise ValueError(
            f"Occlusion needs 1 <= patch <= image size ({size}) and stride >= 1; got patch={patch}, stride={stride}."
        )
    starts = list(range(0, size - patch + 1, stride))
    return starts if starts[-1] == size - patch else starts + [size - patch]


def _occluded_scores_function(model: keras.Model, score_layer: str | None):
    """Compiled (image (H, W, C), masks (P, H, W), fill (C,)) -> class scores (P, classes) of the occluded copies."""
    copy = view(model, score_layer=score_layer)
    key = ("occlusion", backend.NAME)
    if key not in copy.functions:
        probe = keras.Model(copy.inputs, copy.scores)
        shape = tuple(model.inputs[0].shape[1:])
        signature = [(shape, "float32"), ((None, *shape[:2]), "float32"), ((shape[-1],), "float32")]

        def occluded_scores(image, masks, fill):
            hidden = masks[..., None]
            return keras.ops.cast(probe(image[None] * (1.0 - hidden) + fill * hidden, training=False), "float32")

        copy.functions[key] = backend.compiled(occluded_scores, copy.pairs, signature)
    return copy.functions[key]


def occlusion(
    model: keras.Model,
    inputs: np.ndarray,
    targets: int | Sequence[int],
    *,
    patch: int | tuple[int, int] = 32,
    stride: int | tuple[int, int] = 16,
    fill: float | Sequence[float] = 0.0,
    score_layer: str | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """Score drop per pixel (units of the class score): (N, H, W) for one target, (N, K, H, W) for K targets.

    The patch slides with ``stride`` from 0, plus one position flush with the far edge, so every pixel is covered; a
    pixel's attribution is the mean, over the positions whose patch covers it, of y_c(x) - y_c(x occluded), y_c the
    class score before softmax.

    Args:
        model: a Keras 3 classifier with one image input and one output; its current weights are used.
        inputs: float32 (N, H, W, C) images in the model's input units (uint8-range pixels for the custom networks,
            which rescale inside; ``vgg19.preprocess`` output for VGG19).
        targets: class indices: one int gives (N, H, W); a sequence of K gives (N, K, H, W), in its order.
        patch: the hidden square's side in pixels, or (rows, cols); each in 1..the image's size.
        stride: the step between patch positions in pixels, or (rows, cols); each >= 1.
        fill: the value hidden pixels take, in the model's input units: one value, or one per colour (C,).
        score_layer: path or unique name of a layer whose output (N, classes) is taken as the class scores; None: the
            class scores before softmax, found by ``score_source``.
        batch_size: occluded copies prepared at a time (the forward passes themselves take 8 copies each,
            ``models.forward.in_fixed_batches``).

    Returns:
        float32 (N, H, W) for one target, (N, K, H, W) for K targets: signed, in units of the class score; positive
        where hiding the pixel lowers the score.

    Raises:
        ValueError: if a target is outside 0..classes-1 (or ``targets`` is empty), a patch side is outside 1..the
            image's size or a stride is < 1, or ``fill`` is neither one value nor C values.
        ExplainError: if ``score_layer`` is unknown or ambiguous, or ``model`` cannot be copied (see ``view.view``: not
            one image input and one output, a subclassed model, a layer used twice).
    """
    single, values = target_tuple(model, targets, score_layer)
    x = np.asarray(inputs, np.float32)
    height, width, colours = x.shape[1:]
    ph, pw = (patch, patch) if np.isscalar(patch) else patch
    sh, sw = (stride, stride) if np.isscalar(stride) else stride
    corners = [(r, c) for r in patch_positions(height, ph, sh) for c in patch_positions(width, pw, sw)]
    fill_values = np.broadcast_to(np.asarray(fill, np.float32), (colours,)).copy()
    function = _occluded_scores_function(model, score_layer)
    coverage = np.zeros((height, width), np.float32)
    for r, c in corners:
        coverage[r : r + ph, c : c + pw] += 1
    out = np.zeros((len(x), len(values), height, width), np.float32)
    for i in range(len(x)):
        unoccluded = np.zeros((1, height, width), np.float32)
        base = in_fixed_batches(lambda m, image=x[i]: function(image, m, fill_values), unoccluded)[0, list(values)]
        for s in range(0, len(corners), batch_size):
            chunk = corners[s : s + batch_size]
            masks = np.zeros((len(chunk), height, width), np.float32)
            for j, (r, c) in enumerate(chunk):
                masks[j, r : r + ph, c : c + pw] = 1.0
            scores = in_fixed_batches(lambda m, image=x[i]: function(image, m, fill_values), masks)
            drops = base[None] - scores[:, list(values)]  # (P, K)
            out[i] += np.einsum("pk,phw->khw", drops, masks)
    out /= coverage
    return out[:, 0] if single else out
