"""Faithfulness of importance maps: deletion and insertion curves (Petsiuk et al., 2018, "RISE").

Deletion replaces the most important pixels first by a *substrate* and follows the target-class
probability (a faithful map makes it fall fast: low area); insertion starts from a substrate and
restores the most important pixels first (high area is better). Curves are kept per image so that
differences between methods get paired intervals (``auc_differences``) and can be stored.

Substrates: "blur" (Gaussian blur of the image), "zero" (all-zero input in the model's input space: black
for this project's raw-pixel models), "mean" (the image's mean colour). ``RISE_ORIGINAL`` holds the
settings of Petsiuk et al.'s code: deletion to zero, insertion from an 11x11 blur with sigma 5; their
code also follows the *predicted* class (pass ``predicted_classes(...)`` as targets).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy import ndimage

from cnnlib.backend import keras
from cnnlib.models import forward
from cnnlib.stats import bootstrap

SUBSTRATES = ("blur", "zero", "mean")
RISE_ORIGINAL = {"deletion_substrate": "zero", "insertion_substrate": "blur", "blur_sigma": 5.0, "blur_radius": 5}


def substrate(image: np.ndarray, kind: str, blur_sigma: float = 10.0, blur_radius: int | None = None) -> np.ndarray:
    """What removed pixels become: (H, W, C) float32 from an (H, W, C) image; ``kind`` in ``SUBSTRATES``.

    ``blur_radius`` None: SciPy's default kernel radius (4 sigma); RISE's 11x11 kernel is radius 5.
    """
    image = np.asarray(image, np.float32)
    if kind == "blur":
        radius = None if blur_radius is None else (blur_radius, blur_radius, 0)
        return ndimage.gaussian_filter(image, sigma=(blur_sigma, blur_sigma, 0), radius=radius)
    if kind == "zero":
        return np.zeros_like(image)
    if kind == "mean":
        return np.broadcast_to(image.mean(axis=(0, 1), keepdims=True), image.shape).astype(np.float32)
    raise ValueError(f"unknown substrate {kind!r}; choose one of {SUBSTRATES}.")


def _ranks(saliency: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H, W) rank of each pixel, 0 = most important; ties broken at random."""
    h, w = saliency.shape
    order = np.lexsort((rng.random(h * w), -saliency.ravel()))
    rank = np.empty(h * w, int)
    rank[order] = np.arange(h * w)
    return rank.reshape(h, w)


def substrates(
    images: np.ndarray,
    deletion_substrate: str = "blur",
    insertion_substrate: str = "blur",
    blur_sigma: float = 10.0,
    blur_radius: int | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per image, (what deleted pixels become, what insertion starts from): two (H, W, C) float32 arrays.

    Computed once and passed to ``deletion_insertion`` (``substrates=``) when the same images are scored
    with several maps, as the random baseline's draws are.
    """
    out = []
    for image in images:
        image = np.asarray(image, np.float32)
        removed = substrate(image, deletion_substrate, blur_sigma, blur_radius)
        same = insertion_substrate == deletion_substrate
        out.append((removed, removed if same else substrate(image, insertion_substrate, blur_sigma, blur_radius)))
    return out


def deletion_insertion(
    model: keras.Model,
    images: np.ndarray,
    maps: np.ndarray,
    targets: np.ndarray,
    to_inputs: Callable[[np.ndarray], np.ndarray] = lambda x: np.asarray(x, np.float32),
    steps: int = 20,
    blur_sigma: float = 10.0,
    seed: int = 0,
    deletion_substrate: str = "blur",
    insertion_substrate: str = "blur",
    blur_radius: int | None = None,
    images_per_batch: int = 4,
    substrates_of_images: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, np.ndarray]:
    """Deletion and insertion curves: target probability as pixels are removed / added in map order.

    ``images`` (N, H, W, C) in pixel space, ``maps`` (N, H, W), ``targets`` int (N,). Ties in a map are broken
    at random (seeded). Returns {"deletion", "insertion"}: (N, steps + 1) probabilities at fractions
    0, 1/steps, ..., 1 of the pixels. Defaults (blur, sigma 10, both curves) are this project's main setting.
    ``substrates_of_images``: ``substrates(images, ...)`` computed beforehand with the same settings.
    ``to_inputs`` is applied to each image's rows (pixel-wise preprocessing, as every model here uses).
    """
    maps = np.asarray(maps)
    if maps.shape != np.shape(images)[:3] or len(targets) != len(maps):
        raise ValueError(f"maps {maps.shape}, images {np.shape(images)} and {len(targets)} targets do not match.")
    rng = np.random.default_rng(seed)
    n, h, w = maps.shape
    counts = np.array([round(fraction * h * w) for fraction in np.linspace(0, 1, steps + 1)])
    curves = {"deletion": np.zeros((n, steps + 1)), "insertion": np.zeros((n, steps + 1))}

    def rows_of(i: int) -> np.ndarray:
        """(2 (steps + 1), H, W, C) model inputs of image i: rows alternate deletion, insertion per fraction."""
        image = np.asarray(images[i], np.float32)
        removed, empty = (
            substrates_of_images[i]
            if substrates_of_images is not None
            else substrates(image[None], deletion_substrate, insertion_substrate, blur_sigma, blur_radius)[0]
        )
        top = (_ranks(maps[i], rng)[None] < counts[:, None, None])[..., None]  # (steps + 1, H, W, 1)
        rows = np.stack([np.where(top, removed, image), np.where(top, image, empty)], axis=1)
        return to_inputs(rows.reshape(-1, *np.shape(images)[1:]))

    for start in range(0, n, images_per_batch):
        chunk = range(start, min(start + images_per_batch, n))
        # the chunk's rows stream into batches of 64: the same batches as predicting their concatenation
        probs = forward.predict_parts(model, (rows_of(i) for i in chunk), batch_size=64)
        for k, i in enumerate(chunk):
            rows = probs[2 * (steps + 1) * k : 2 * (steps + 1) * (k + 1), int(targets[i])]
            curves["deletion"][i], curves["insertion"][i] = rows[0::2], rows[1::2]
    return curves


def curves_of_maps(
    model: keras.Model,
    images: np.ndarray,
    maps: Mapping[str, np.ndarray],
    targets: np.ndarray,
    **settings,
) -> dict[str, dict[str, np.ndarray]]:
    """``deletion_insertion`` of several map stacks on the same images: {name: curves}, the substrates
    computed once. ``settings``: ``deletion_insertion``'s keywords (steps, seed, substrates, ...)."""
    keys = ("deletion_substrate", "insertion_substrate", "blur_sigma", "blur_radius")
    shared = substrates(images, **{k: settings[k] for k in keys if k in settings})
    return {
        name: deletion_insertion(model, images, m, targets, substrates_of_images=shared, **settings)
        for name, m in maps.items()
    }


def auc_per_image(curves: np.ndarray) -> np.ndarray:
    """Area under each (N, steps + 1) curve on [0, 1] (trapezoid rule): (N,)."""
    curves = np.asarray(curves, float)
    return np.trapezoid(curves, np.linspace(0, 1, curves.shape[1]), axis=1)


def area_under(curves: np.ndarray) -> float:
    """Mean over images of the area under (N, steps + 1) curves on [0, 1] (trapezoid rule)."""
    return float(np.mean(auc_per_image(curves)))


def auc_table(curves: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, dict[str, float]]:
    """{method: {"deletion AUC", "insertion AUC"}} of ``curves_of_maps``-style curves (mean over images, in [0, 1])."""
    return {
        name: {"deletion AUC": area_under(c["deletion"]), "insertion AUC": area_under(c["insertion"])}
        for name, c in curves.items()
    }


def predicted_classes(
    model: keras.Model,
    images: np.ndarray,
    to_inputs: Callable[[np.ndarray], np.ndarray] = lambda x: np.asarray(x, np.float32),
) -> np.ndarray:
    """The model's arg-max class per image: int (N,) (RISE follows this class, not the true one)."""
    return np.argmax(forward.predict(model, to_inputs(images), batch_size=64), axis=1)


def smooth_random_maps(
    seed: int = 0, sigma: float = 16.0
) -> Callable[[keras.Model, np.ndarray, np.ndarray], np.ndarray]:
    """A random baseline with blobs instead of pixel noise: uniform noise smoothed by a Gaussian of ``sigma``
    pixels (16 px: about one cell of a 14x14 Grad-CAM grid upsampled to 224), per image: (N, H, W)."""

    def explain(model, inputs, targets):
        noise = np.random.default_rng(seed).random(np.asarray(inputs).shape[:3])
        return np.stack([ndimage.gaussian_filter(m, sigma) for m in noise]).astype(np.float32)

    return explain


def random_baseline(
    model: keras.Model,
    images: np.ndarray,
    targets: np.ndarray,
    draws: int = 10,
    seed: int = 0,
    sigma: float = 16.0,
    **curve_settings,
) -> dict[str, np.ndarray]:
    """Deletion / insertion curves of ``draws`` smooth random maps, averaged over the draws per image.

    Returns {"deletion", "insertion"}: (N, steps + 1) means over draws, and {"deletion_auc_draws",
    "insertion_auc_draws"}: (draws,) mean AUC of each draw (their spread is the baseline's own noise).
    """
    if draws < 1:
        raise ValueError("draws must be at least 1.")
    shared = curve_settings.pop("substrates_of_images", None)
    if shared is None:  # once for all draws
        keys = ("deletion_substrate", "insertion_substrate", "blur_sigma", "blur_radius")
        shared = substrates(images, **{k: curve_settings[k] for k in keys if k in curve_settings})
    runs = [
        deletion_insertion(
            model,
            images,
            smooth_random_maps(seed + d, sigma)(model, images, targets),
            targets,
            seed=seed + d,
            substrates_of_images=shared,
            **curve_settings,
        )
        for d in range(draws)
    ]
    out = {kind: np.mean([r[kind] for r in runs], axis=0) for kind in ("deletion", "insertion")}
    for kind in ("deletion", "insertion"):
        out[f"{kind}_auc_draws"] = np.array([area_under(r[kind]) for r in runs])
    return out


def auc_differences(
    curves: Mapping[str, Mapping[str, np.ndarray]],
    pairs: Sequence[tuple[str, str]],
    n_boot: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> list[dict]:
    """Paired bootstrap (over images) of AUC(A) - AUC(B) for deletion and insertion, for each (A, B) pair.

    ``curves``: {method: {"deletion": (N, S), "insertion": (N, S)}} on the same images in the same order.
    """
    rows = []
    for a, b in pairs:
        for kind in ("deletion", "insertion"):
            result = bootstrap.paired_bootstrap(
                auc_per_image(curves[a][kind]), auc_per_image(curves[b][kind]), n_boot, seed, confidence
            )
            rows.append({"A": a, "B": b, "curve": kind, **result})
    return rows


def curves_record(curves: Mapping[str, np.ndarray], digits: int = 4) -> dict[str, list]:
    """Per-image curves as rounded nested lists for results/*.json: {kind: [[p_0, ..., p_steps], ...]}."""
    return {kind: np.round(np.asarray(c, float), digits).tolist() for kind, c in curves.items() if np.ndim(c) == 2}
