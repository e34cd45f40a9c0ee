"""Sanity checks for saliency maps (Adebayo et al., 2018): map similarity and model randomisation.

An ``explain`` function maps (model, inputs, targets (N,)) -> importance maps (N, H, W).
``cascade_over_seeds`` re-initialises layers from the top down (with several re-initialisation
seeds) and measures how much the maps change: Spearman rank correlation with and without
absolute values, and SSIM. A map that becomes constant (e.g. an all-zero Grad-CAM map) is not
"decorrelated": it has no ranking at all, so it is counted separately and left out of the means.
Deletion / insertion curves live in ``faithfulness`` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy import ndimage, stats

from cnnlib import backend
from cnnlib.backend import keras
from cnnlib.interpret.checks.faithfulness import area_under, deletion_insertion  # noqa: F401  (re-exported)
from cnnlib.interpret.gradcam import grad_cam
from cnnlib.interpret.guided_backprop import guided_backprop, one_hot_scores

Explain = Callable[[keras.Model, np.ndarray, np.ndarray], np.ndarray]


# ----------------------------------------------------------------------------- explain functions (N, H, W)


def gradcam_maps(
    model: keras.Model, inputs: np.ndarray, targets: np.ndarray, layer_name: str | None = None
) -> np.ndarray:
    """Grad-CAM of each image's own target class, upsampled, in [0, 1]: (N, H, W)."""
    classes = sorted(set(int(t) for t in targets))
    maps = grad_cam(model, inputs, classes, layer_name)
    return maps[np.arange(len(inputs)), [classes.index(int(t)) for t in targets]]


def guided_backprop_maps(model: keras.Model, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """|guided gradient| of each image's target class score (pre-softmax), summed over colour channels: (N, H, W)."""
    weights = one_hot_scores(model, targets)
    return np.abs(guided_backprop(model, inputs, None, weights=weights)).sum(axis=-1)


def guided_backprop_signed_maps(model: keras.Model, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Guided gradient of each image's target class score, summed over colour channels, sign kept: (N, H, W).

    With ``guided_backprop_maps`` (absolute values) this gives Adebayo et al.'s "with and without absolute
    values" pair; Grad-CAM maps are non-negative (ReLU), so for them the two coincide.
    """
    weights = one_hot_scores(model, targets)
    return guided_backprop(model, inputs, None, weights=weights).sum(axis=-1)


def guided_gradcam_maps(model: keras.Model, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Guided backprop map times Grad-CAM map, per image: (N, H, W)."""
    return guided_backprop_maps(model, inputs, targets) * gradcam_maps(model, inputs, targets)


def random_maps(seed: int = 0) -> Explain:
    """A baseline explanation: uniform noise, the same for any model."""

    def explain(model, inputs, targets):
        return np.random.default_rng(seed).random(np.asarray(inputs).shape[:3]).astype(np.float32)

    return explain


# ----------------------------------------------------------------------------- similarity of maps


def is_constant(m: np.ndarray, rtol: float = 1e-6) -> bool:
    """True when a map has no ranking: its range is at most ``rtol`` times its largest magnitude (all-zero included)."""
    m = np.asarray(m, np.float64)
    return bool(np.ptp(m) <= rtol * np.max(np.abs(m)))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation of two maps (any shape); NaN when either is constant (no ranking to correlate)."""
    a, b = np.ravel(a), np.ravel(b)
    if is_constant(a) or is_constant(b):
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def ssim(a: np.ndarray, b: np.ndarray, window: int = 7) -> float:
    """Structural similarity of two 2-D maps, each first scaled to [0, 1] (data range 1).

    Wang et al. (2004) with a ``window`` x ``window`` uniform window, C1 = 0.01**2, C2 = 0.03**2, population
    (co)variances, and the mean over every pixel (borders reflected). scikit-image's default differs in
    using sample covariances and cropping the borders, so its values differ slightly; tests check this one
    against a direct window-by-window computation.
    """

    def unit(m):
        m = np.asarray(m, np.float64)
        return (m - m.min()) / (np.ptp(m) or 1.0)

    a, b = unit(a), unit(b)
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = ndimage.uniform_filter(a, window), ndimage.uniform_filter(b, window)
    var_a = ndimage.uniform_filter(a * a, window) - mu_a**2
    var_b = ndimage.uniform_filter(b * b, window) - mu_b**2
    cov = ndimage.uniform_filter(a * b, window) - mu_a * mu_b
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(index.mean())


def _centered_ranks(x: np.ndarray) -> np.ndarray:
    """Row-wise average ranks (ties share their mean rank) minus each row's mean: (N, P) float64."""
    ranks = stats.rankdata(x, axis=1)
    return ranks - ranks.mean(axis=1, keepdims=True)


def _row_spearman(ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
    """Spearman correlation of each row pair, from two (N, P) ``_centered_ranks``: (N,)."""
    return np.sum(ra * rb, axis=1) / np.sqrt(np.sum(ra * ra, axis=1) * np.sum(rb * rb, axis=1))


class ReferenceMaps:
    """A reference map stack with what every comparison against it needs, computed once: (N, H, W) float64
    maps, which are constant, whether any is negative, and lazily the centered ranks of the maps and of |maps|."""

    def __init__(self, maps: np.ndarray):
        self.maps = np.asarray(maps, np.float64)
        self.constant = np.array([is_constant(m) for m in self.maps], bool)
        self.negative = bool((self.maps < 0).any())
        self._ranks: dict[bool, np.ndarray] = {}

    def ranks(self, absolute: bool) -> np.ndarray:
        if absolute not in self._ranks:
            flat = self.maps.reshape(len(self.maps), -1)
            self._ranks[absolute] = _centered_ranks(np.abs(flat) if absolute else flat)
        return self._ranks[absolute]


def map_similarity(reference: np.ndarray | ReferenceMaps, other: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image similarity of two (N, H, W) map stacks.

    Returns (N,) arrays: "spearman", "spearman_abs" (of |maps|), "ssim" (NaN where either map is constant),
    and bool "constant_reference", "constant_other".
    """
    ref = reference if isinstance(reference, ReferenceMaps) else ReferenceMaps(reference)
    other = np.asarray(other, np.float64)
    if ref.maps.shape != other.shape or other.ndim != 3:
        raise ValueError(f"need two (N, H, W) map stacks of the same shape; got {ref.maps.shape} and {other.shape}.")
    const_r = ref.constant
    const_o = np.array([is_constant(m) for m in other], bool)
    keep = ~(const_r | const_o)
    out = {key: np.full(len(other), np.nan) for key in ("spearman", "spearman_abs", "ssim")}
    if keep.any():
        o = other[keep].reshape(keep.sum(), -1)
        out["spearman"][keep] = _row_spearman(ref.ranks(False)[keep], _centered_ranks(o))
        signed = bool((ref.maps[keep] < 0).any()) or bool((o < 0).any())
        out["spearman_abs"][keep] = (
            _row_spearman(ref.ranks(True)[keep], _centered_ranks(np.abs(o))) if signed else out["spearman"][keep]
        )
        out["ssim"][keep] = [ssim(a, b) for a, b in zip(ref.maps[keep], other[keep])]
    return {**out, "constant_reference": const_r.copy(), "constant_other": const_o}


def _nanmean(values: np.ndarray) -> float | None:
    values = np.asarray(values, float)
    return None if np.all(np.isnan(values)) else float(np.nanmean(values))


def summarize_similarity(per_image: Mapping[str, np.ndarray]) -> dict:
    """Means over the images where neither map is constant, and the counts of constant maps."""
    compared = ~(np.asarray(per_image["constant_reference"]) | np.asarray(per_image["constant_other"]))
    return {
        "spearman": _nanmean(per_image["spearman"]),
        "spearman_abs": _nanmean(per_image["spearman_abs"]),
        "ssim": _nanmean(per_image["ssim"]),
        "n_images": int(compared.size),
        "n_compared": int(compared.sum()),
        "n_constant_reference": int(np.sum(per_image["constant_reference"])),
        "n_constant_other": int(np.sum(per_image["constant_other"])),
    }


def compare_maps(reference: np.ndarray, other: np.ndarray) -> dict:
    """``summarize_similarity`` of two (N, H, W) map stacks: mean Spearman (signed, |.|), SSIM and constant counts."""
    return summarize_similarity(map_similarity(reference, other))


def model_similarity(
    model_a: keras.Model, model_b: keras.Model, inputs: np.ndarray, targets: np.ndarray, methods: Mapping[str, Explain]
) -> dict[str, dict]:
    """Calibration line: how similar are the maps of two independently trained models (e.g. seeds 42 and 43)?

    Randomisation similarities are read against this: two equally good but unrelated networks already
    differ this much. Returns {method: compare_maps(...)}.
    """
    return {
        name: compare_maps(explain(model_a, inputs, targets), explain(model_b, inputs, targets))
        for name, explain in methods.items()
    }


# ----------------------------------------------------------------------------- model randomisation


def _one_function_per_copy():
    """Each randomised copy compiles its own gradient function: expected here, so a retracing warning is muted."""
    return backend.quiet_recompiling()


def randomize_layers(
    model: keras.Model, layer_names: Sequence[str], seed: int, into: keras.Model | None = None
) -> keras.Model:
    """A copy of ``model`` whose ``layer_names`` get fresh weights from their own initialisers.

    ``into``: an earlier copy (``keras.models.clone_model(model)``) to overwrite instead of cloning again, so
    the functions the methods compiled for it are reused (the same weights, so the same maps).
    """
    copy = keras.models.clone_model(model) if into is None else into
    copy.set_weights(model.get_weights())
    for offset, name in enumerate(layer_names):
        layer = copy.get_layer(name)
        # A fresh initialiser with an explicit seed: the clone's own initialisers drew their seeds
        # from whatever random state the process had, which would make reruns differ.
        config = {**layer.kernel_initializer.get_config(), "seed": seed + offset}
        initializer = layer.kernel_initializer.__class__.from_config(config)
        layer.set_weights(
            [
                np.asarray(initializer(w.shape)) if i == 0 else np.zeros(w.shape, "float32")
                for i, w in enumerate(layer.get_weights())
            ]
        )
    return copy


def cascade_over_seeds(
    model: keras.Model,
    inputs: np.ndarray,
    targets: np.ndarray,
    methods: Mapping[str, Explain],
    layers_top_down: Sequence[str],
    seeds: Sequence[int],
    steps: Sequence[int] | None = None,
    trained_maps: Mapping[str, np.ndarray] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Cascading randomisation with several re-initialisation seeds; every randomised copy serves all methods.

    For each seed s and step k (layers_top_down[:k + 1] re-initialised with seed s), each method's maps are
    compared image by image with the trained model's maps. ``steps``: the k to run (default all; ``[K - 1]``
    is every layer at once); ``trained_maps``: the trained model's maps where already computed. Returns
    {method: {"spearman", "spearman_abs", "ssim", "constant_randomized": (S, len(steps), N) arrays,
    "constant_trained": (N,) bool}}; summarise with ``cascade_summary``, store with ``similarity_record``.
    """
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError(f"need distinct re-initialisation seeds; got {list(seeds)}.")
    steps = list(range(len(layers_top_down))) if steps is None else list(steps)
    given = trained_maps or {}
    originals = {
        name: ReferenceMaps(given[name] if given.get(name) is not None else explain(model, inputs, targets))
        for name, explain in methods.items()
    }
    shape = (len(seeds), len(steps), len(inputs))
    out = {name: {key: np.full(shape, np.nan) for key in ("spearman", "spearman_abs", "ssim")} for name in methods}
    for name in methods:
        out[name]["constant_randomized"] = np.zeros(shape, bool)
        out[name]["constant_trained"] = originals[name].constant.copy()
    randomized = keras.models.clone_model(model)  # overwritten at every step: compiled functions are reused
    with _one_function_per_copy():
        for i, seed in enumerate(seeds):
            for j, k in enumerate(steps):
                randomize_layers(model, layers_top_down[: k + 1], seed, into=randomized)
                for name, explain in methods.items():
                    sim = map_similarity(originals[name], explain(randomized, inputs, targets))
                    for key in ("spearman", "spearman_abs", "ssim"):
                        out[name][key][i, j] = sim[key]
                    out[name]["constant_randomized"][i, j] = sim["constant_other"]
    return out


def cascade_summary(per_image: Mapping[str, np.ndarray], layers_top_down: Sequence[str]) -> list[dict]:
    """One row per step: means over seeds and compared images, the sd of the per-seed means, constant counts.

    Rows keep the keys "randomized_down_to", "spearman", "ssim" of the single-seed version, and add
    "spearman_abs", "*_sd_over_seeds", "n_seeds", "n_compared" (seed x image pairs with two non-constant maps),
    "n_constant_randomized" (over seeds x images) and "n_constant_trained" (images).
    """
    rows = []
    for k, layer in enumerate(layers_top_down):
        row = {"randomized_down_to": layer, "n_seeds": int(per_image["spearman"].shape[0])}
        for key in ("spearman", "spearman_abs", "ssim"):
            values = per_image[key][:, k]
            row[key] = _nanmean(values)
            per_seed = [_nanmean(v) for v in values]
            per_seed = [v for v in per_seed if v is not None]
            row[f"{key}_sd_over_seeds"] = float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else None
        constant = per_image["constant_randomized"][:, k] | per_image["constant_trained"][None, :]
        row["n_compared"] = int((~constant).sum())
        row["n_constant_randomized"] = int(per_image["constant_randomized"][:, k].sum())
        row["n_constant_trained"] = int(per_image["constant_trained"].sum())
        rows.append(row)
    return rows


def similarity_record(per_image: Mapping[str, np.ndarray], digits: int = 4) -> dict[str, list]:
    """Per-image arrays as JSON-able nested lists, rounded to ``digits``; NaN (constant map) becomes null."""

    def plain(a):
        a = np.asarray(a)
        if a.dtype == bool:
            return a.tolist()
        return np.where(np.isnan(a), None, np.round(a.astype(float), digits)).tolist()

    return {key: plain(value) for key, value in per_image.items()}


def cascading_randomization(
    model: keras.Model,
    inputs: np.ndarray,
    targets: np.ndarray,
    explain: Explain,
    layers_top_down: Sequence[str],
    seed: int = 0,
) -> list[dict]:
    """Single-seed cascading randomisation: ``cascade_summary`` rows for one explain function."""
    per_image = cascade_over_seeds(model, inputs, targets, {"maps": explain}, layers_top_down, [seed])["maps"]
    return cascade_summary(per_image, layers_top_down)


# ----------------------------------------------------------------------------- examples


def randomization_examples(
    model: keras.Model,
    inputs: np.ndarray,
    targets: np.ndarray,
    methods: dict[str, Explain],
    layers_top_down: Sequence[str],
    seed: int = 0,
) -> dict[str, list[np.ndarray]]:
    """Maps of the first input for the trained model and each cascading step: {method: [(H, W), ...]}."""
    with _one_function_per_copy():
        steps = [model] + [
            randomize_layers(model, layers_top_down[:k], seed) for k in range(1, len(layers_top_down) + 1)
        ]
        return {name: [explain(m, inputs[:1], targets[:1])[0] for m in steps] for name, explain in methods.items()}
