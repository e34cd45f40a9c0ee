"""Images with known evidence: the class is decided by a small marker at a random position.

The localisation benchmark (``interpret.checks.localisation``) needs images where the truth about *where* the
evidence lies is known by construction. Each image here is a textured background (smooth random colour blobs plus
pixel noise), one class-neutral distractor (a filled disc of the markers' colour and about the same area, so
brightness and colour say nothing about the class) and one marker whose *shape* is the class:

- 0 ``cross``: a plus sign, 4-pixel bars;
- 1 ``ring``: a hollow square, 4-pixel sides;
- 2 ``bars``: three horizontal 4-pixel stripes.

The marker's box is the evidence box. Positions are uniform over the whole image (marker fully inside), so about
half of the markers fall in the border zones where the upsampling rules differ. Everything is drawn from one
``numpy.random.default_rng(seed)``: the same seed gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MARKERS = ("cross", "ring", "bars")
MARKER_SIDE = 24  # pixels
STROKE = 4  # pixels


@dataclass(frozen=True)
class MarkerImages:
    """A batch of marker images and where their evidence is."""

    images: np.ndarray  # float32 (N, size, size, 3), uint8 range 0..255 (the custom networks' input units)
    labels: np.ndarray  # int (N,), index into MARKERS
    boxes: np.ndarray  # int (N, 4): the marker's (top, left, bottom, right), half-open, in pixels


def marker_mask(kind: int, side: int = MARKER_SIDE, stroke: int = STROKE) -> np.ndarray:
    """Boolean (side, side) drawing of marker ``kind`` (index into ``MARKERS``)."""
    if not 0 <= kind < len(MARKERS):
        raise ValueError(f"marker kind {kind} is not one of 0..{len(MARKERS) - 1} ({', '.join(MARKERS)}).")
    mask = np.zeros((side, side), bool)
    mid = slice((side - stroke) // 2, (side + stroke) // 2)
    if MARKERS[kind] == "cross":
        mask[mid, :] = True
        mask[:, mid] = True
    elif MARKERS[kind] == "ring":
        mask[:stroke, :] = mask[-stroke:, :] = mask[:, :stroke] = mask[:, -stroke:] = True
    else:  # bars
        for top in np.linspace(0, side - stroke, 3).round().astype(int):
            mask[top : top + stroke, :] = True
    return mask


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) float: smooth colour blobs (an 8x8 random grid, bilinearly enlarged) plus pixel noise."""
    coarse = rng.uniform(40, 160, (8, 8, 3))
    grid = np.linspace(0, 7, size)
    low = np.clip(np.floor(grid).astype(int), 0, 6)
    frac = grid - low
    rows = coarse[low] * (1 - frac)[:, None, None] + coarse[low + 1] * frac[:, None, None]  # (size, 8, 3)
    smooth = rows[:, low] * (1 - frac)[None, :, None] + rows[:, low + 1] * frac[None, :, None]
    return smooth + rng.normal(0, 12, (size, size, 3))


def _free_position(rng: np.random.Generator, size: int, side: int, avoid: tuple[int, int, int, int]) -> tuple:
    """Top-left of a side x side square fully inside the image and not touching ``avoid``."""
    for _ in range(1000):
        top, left = (int(v) for v in rng.integers(0, size - side + 1, 2))
        if top + side <= avoid[0] or top >= avoid[2] or left + side <= avoid[1] or left >= avoid[3]:
            return top, left
    raise ValueError(f"no room for a {side}-pixel distractor beside the marker in a {size}-pixel image.")


def marker_images(n: int, seed: int, size: int = 224, side: int = MARKER_SIDE) -> MarkerImages:
    """``n`` marker images, classes balanced (image i has class i mod 3), positions and textures from ``seed``.

    Args:
        n: number of images.
        seed: the one seed of every draw (background, marker position, distractor position).
        size: image side in pixels (square).
        side: marker side in pixels; the distractor disc has about the same area.

    Returns:
        ``MarkerImages``: float32 (n, size, size, 3) images in 0..255, labels (n,), boxes (n, 4) half-open.

    Raises:
        ValueError: if ``size`` cannot hold a marker and a distractor side by side (``size < 2 * side``).
    """
    if size < 2 * side:
        raise ValueError(f"size={size} cannot hold a {side}-pixel marker and a distractor; use size >= {2 * side}.")
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size, 3), np.float32)
    labels = np.arange(n) % len(MARKERS)
    boxes = np.empty((n, 4), int)
    colour_of = np.array([235.0, 235.0, 60.0])  # markers and distractor share one colour (yellow)
    yy, xx = np.mgrid[:side, :side]
    disc = (yy - (side - 1) / 2) ** 2 + (xx - (side - 1) / 2) ** 2 <= (side * 0.35) ** 2
    for i in range(n):
        image = _background(rng, size)
        top, left = (int(v) for v in rng.integers(0, size - side + 1, 2))
        box = (top, left, top + side, left + side)
        d_top, d_left = _free_position(rng, size, side, box)
        image[d_top : d_top + side, d_left : d_left + side][disc] = colour_of
        image[top : top + side, left : left + side][marker_mask(labels[i], side)] = colour_of
        images[i] = np.clip(image, 0, 255)
        boxes[i] = box
    return MarkerImages(images, labels, boxes)
