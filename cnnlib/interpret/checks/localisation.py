"""Does a Grad-CAM map point at the evidence? The localisation benchmark of the upsampling rules.

On images whose evidence box is known (synthetic marker images, ``data.markers``; or Caltech-101's own object
outlines, ``data.annotations``), each image's Grad-CAM for its true class is computed once at the layer and brought
to the input grid by every rule of ``upsample.UPSAMPLING``; two scores per map:

- **pointing game** (Zhang et al., 2016): a hit when the map's peak lies in the evidence box enlarged by
  ``POINTING_TOLERANCE`` pixels on each side (their 15 pixels). Where the peak is a plateau (a held edge value),
  its centre of mass is the peak. An all-zero map is a miss.
- **energy in the box** (Wang et al., 2020, Score-CAM's "energy-based pointing game"): the share of the map's sum
  inside the box (the box alone, no tolerance). An all-zero map scores 0.

``summarize`` turns per-network scores into means with intervals over networks x images (networks of several
seeds and architectures scored on the same images) and paired differences between rules; ``winner`` is the rule
the defaults use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from cnnlib.backend import keras
from cnnlib.data import annotations
from cnnlib.interpret.cam import cam_layer
from cnnlib.interpret.gradcam import grad_cam_raw
from cnnlib.interpret.upsample import UPSAMPLING, upsample_raw
from cnnlib.stats import bootstrap

POINTING_TOLERANCE = 15  # pixels, as Zhang et al. (2016)
SCORES = ("pointing", "energy")


def peak_positions(maps: np.ndarray) -> np.ndarray:
    """(N, 2) float (row, col) of each (H, W) map's peak: the centre of mass of the pixels at its maximum (within
    1e-6 of it, relative); NaN for an all-zero map."""
    flat = maps.reshape(len(maps), -1)
    peak = flat.max(axis=1, keepdims=True)
    at_peak = (flat >= peak - 1e-6 * np.abs(peak)) & (peak > 0)
    rows, cols = np.divmod(np.arange(flat.shape[1]), maps.shape[-1])
    count = at_peak.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([(at_peak * rows).sum(axis=1) / count, (at_peak * cols).sum(axis=1) / count], axis=1)


def pointing_hits(maps: np.ndarray, boxes: np.ndarray, tolerance: float = POINTING_TOLERANCE) -> np.ndarray:
    """Bool (N,): the peak of map i lies in box i ((top, left, bottom, right), half-open) widened by ``tolerance``.

    Args:
        maps: (N, H, W) maps >= 0 on the input grid.
        boxes: (N, 4) evidence boxes in input pixels.
        tolerance: pixels added on every side of the box.
    """
    peaks = peak_positions(np.asarray(maps, float))
    b = np.asarray(boxes, float)
    with np.errstate(invalid="ignore"):
        inside = (
            (peaks[:, 0] >= b[:, 0] - tolerance)
            & (peaks[:, 0] <= b[:, 2] - 1 + tolerance)
            & (peaks[:, 1] >= b[:, 1] - tolerance)
            & (peaks[:, 1] <= b[:, 3] - 1 + tolerance)
        )
    return inside & ~np.isnan(peaks[:, 0])


def energy_in_box(maps: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Float (N,): the share of map i's sum inside box i (half-open pixel box); 0 for an all-zero map.

    Args:
        maps: (N, H, W) maps >= 0 on the input grid (negative values are clipped to 0 first).
        boxes: (N, 4) (top, left, bottom, right) boxes in input pixels.
    """
    m = np.clip(np.asarray(maps, float), 0, None)
    rows, cols = np.arange(m.shape[1]), np.arange(m.shape[2])
    b = np.asarray(boxes)
    in_rows = (rows[None] >= b[:, :1]) & (rows[None] < b[:, 2:3])  # (N, H)
    in_cols = (cols[None] >= b[:, 1:2]) & (cols[None] < b[:, 3:4])  # (N, W)
    inside = np.einsum("nhw,nh,nw->n", m, in_rows, in_cols)
    total = m.sum(axis=(1, 2))
    return np.where(total > 0, inside / np.where(total > 0, total, 1), 0.0)


def localisation_scores(
    model: keras.Model,
    inputs: np.ndarray,
    targets: Sequence[int],
    boxes: np.ndarray,
    layer_name: str | None = None,
    methods: Sequence[str] = UPSAMPLING,
    tolerance: float = POINTING_TOLERANCE,
) -> dict:
    """Pointing game and energy in the box of each image's Grad-CAM, upsampled by each rule in ``methods``.

    Args:
        model: a Keras 3 classifier with one image input and one output.
        inputs: float32 (N, H, W, C) images in the model's input units.
        targets: (N,) the class whose evidence each box holds (the true class).
        boxes: (N, 4) evidence boxes (top, left, bottom, right), half-open, in input pixels.
        layer_name: the Grad-CAM layer; None: ``default_layer``.
        methods: upsampling rules to score.
        tolerance: the pointing game's tolerance in pixels.

    Returns:
        {"layer": path, method: {"pointing": bool (N,), "energy": float (N,)} for each method}.

    Raises:
        ValueError: if ``targets`` or ``boxes`` do not have one row per image.
    """
    x = np.asarray(inputs, np.float32)
    t = np.asarray(targets, int)
    b = np.asarray(boxes)
    if t.shape != (len(x),) or b.shape != (len(x), 4):
        raise ValueError(
            f"need one target and one (top, left, bottom, right) box per image for {len(x)} images; "
            f"got targets {t.shape} and boxes {b.shape}."
        )
    path = cam_layer(model, layer_name)
    classes = sorted(set(t.tolist()))
    raw = grad_cam_raw(model, x, classes, path)[np.arange(len(x)), [classes.index(k) for k in t]]  # (N, h, w)
    scores = {"layer": path}
    for method in methods:
        up = upsample_raw(raw, model, path, method)
        scores[method] = {"pointing": pointing_hits(up, b, tolerance), "energy": energy_in_box(up, b)}
    return scores


def summarize(
    per_network: Sequence[Mapping], methods: Sequence[str] = UPSAMPLING, n_boot: int = 2_000, seed: int = 0
) -> dict:
    """Means with 95% intervals over networks x images, and paired differences between the rules.

    Args:
        per_network: one ``localisation_scores`` result per network, all on the same images in the same order (a
            crossed design: ``bootstrap.hierarchical_bootstrap`` resamples networks and images; with one network,
            ``bootstrap.paired_bootstrap`` resamples the images).
        methods: the rules to summarise, in order.
        n_boot: bootstrap resamples.
        seed: the bootstrap's seed.

    Returns:
        {"networks", "images", score: {method: {"mean", "ci"}}, "differences": {score: {"a - b": {"difference",
        "ci"}}} for every pair of methods}.
    """
    table = {s: {m: np.array([np.asarray(n[m][s], float) for n in per_network]) for m in methods} for s in SCORES}
    first = table[SCORES[0]][methods[0]]

    def interval(a: np.ndarray, b: np.ndarray) -> dict:
        if len(a) == 1:
            r = bootstrap.paired_bootstrap(a[0], b[0], n_boot, seed)
        else:
            r = bootstrap.hierarchical_bootstrap(a, b, n_boot, seed)
        return {"difference": r["difference"], "ci": r["ci"]}

    summary = {"networks": int(first.shape[0]), "images": int(first.shape[1]), "differences": {}}
    for score in SCORES:
        summary[score] = {}
        for method in methods:
            r = interval(table[score][method], np.zeros_like(first))
            summary[score][method] = {"mean": r["difference"], "ci": r["ci"]}
        summary["differences"][score] = {}
        for i, a in enumerate(methods):
            for b in methods[i + 1 :]:
                summary["differences"][score][f"{a} - {b}"] = interval(table[score][a], table[score][b])
    return summary


def winner(summary: Mapping) -> str:
    """The rule that localises best: highest mean pointing-game accuracy, ties broken by energy in the box."""
    methods = list(summary["pointing"])
    return max(methods, key=lambda m: (round(summary["pointing"][m]["mean"], 12), summary["energy"][m]["mean"]))


def caltech_scores(
    model: keras.Model,
    inputs: np.ndarray,
    labels: np.ndarray,
    image_paths: Sequence,
    annotations_root,
    n_boot: int = 2_000,
    seed: int = 0,
) -> dict | None:
    """The benchmark on Caltech-101 images with the official object outlines: each annotated image's Grad-CAM for
    its true class against its annotated box (``data.annotations``), summarised over the images.

    Args:
        model: the network to score.
        inputs: float32 (N, H, W, C) images in the model's input units (resized from ``image_paths``).
        labels: (N,) true classes.
        image_paths: (N,) the original image files (``.../<class>/image_XXXX.jpg``).
        annotations_root: the official ``Annotations`` folder.

    Returns:
        None when no image has an annotation; else ``summarize``'s dict for this one network plus "annotated" (the
        count of images scored).

    Raises:
        AnnotationError: an annotation file exists but cannot be read.
    """
    boxes, kept = annotations.evidence_boxes(annotations_root, image_paths, inputs.shape[1])
    if len(kept) < 2:
        return None
    scores = localisation_scores(model, np.asarray(inputs)[kept], np.asarray(labels)[kept], boxes)
    return {**summarize([scores], n_boot=n_boot, seed=seed), "annotated": len(kept)}
