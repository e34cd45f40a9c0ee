"""Bootstrap intervals: paired over images, hierarchical over training seeds x images, and the Monte Carlo error
of their endpoints; paired score families tested with Wilcoxon and Holm.

Pure NumPy / SciPy, same conventions as ``statistics`` (differences are A - B, intervals two-sided at
``confidence``, every draw from an explicit seed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

from cnnlib.stats.statistics import holm


def _percentile(draws: np.ndarray, confidence: float) -> list[float]:
    tail = 100 * (1 - confidence) / 2
    return [float(v) for v in np.percentile(draws, [tail, 100 - tail])]


def paired_bootstrap(
    values_a: np.ndarray, values_b: np.ndarray, n_boot: int = 10_000, seed: int = 0, confidence: float = 0.95
) -> dict:
    """Percentile bootstrap over images of mean(values_a - values_b): per-image pairs (N,) resampled together.

    Works for correct vectors (accuracy difference) and for per-image scores such as deletion AUCs.
    Returns {"difference", "ci", "n_boot", "seed"}.
    """
    a, b = np.asarray(values_a, float), np.asarray(values_b, float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"need two 1-D arrays of the same length >= 2; got {a.shape} and {b.shape}.")
    d = a - b
    draws = d[np.random.default_rng(seed).integers(0, len(d), (n_boot, len(d)))].mean(axis=1)
    return {"difference": float(d.mean()), "ci": _percentile(draws, confidence), "n_boot": n_boot, "seed": seed}


def paired_score_family(
    comparisons: Sequence[tuple[str, np.ndarray, np.ndarray]], n_boot: int, seed: int = 0, alpha: float = 0.05
) -> list[dict]:
    """Paired differences of per-image scores, tested as one family.

    Args:
        comparisons: (label, scores A (N,), scores B (N,)) per comparison, A and B on the same N images.
        n_boot: resamples of each percentile bootstrap (over the images).
        seed: the bootstrap's random seed.
        alpha: the family-wise error rate Holm controls.

    Returns:
        One row per comparison: "comparison" (its label), "difference" (mean of A - B) and "ci" (bootstrap 95%),
        "p" (Wilcoxon signed-rank, two-sided; 1 when A and B agree on every image), "p_holm" (Holm over all
        ``comparisons``), "family_size", and "distinguishable" (Holm-adjusted p below ``alpha``).
    """
    rows = []
    for label, a, b in comparisons:
        d = np.asarray(a, float) - np.asarray(b, float)
        p = 1.0 if not np.any(d) else float(stats.wilcoxon(d).pvalue)
        rows.append({"comparison": label, **paired_bootstrap(a, b, n_boot, seed), "p": p})
    for row, adjusted in zip(rows, holm([r["p"] for r in rows])):
        row.update(p_holm=adjusted, family_size=len(rows), distinguishable=bool(adjusted < alpha))
    return rows


def hierarchical_bootstrap(
    values_a: np.ndarray, values_b: np.ndarray, n_boot: int = 10_000, seed: int = 0, confidence: float = 0.95
) -> dict:
    """Bootstrap of the mean difference over seeds x images: (S, N) arrays, row s = training seed s.

    Seeds and test images are crossed (every seed is scored on the same images), so each draw resamples the
    seeds and, independently, the images, and takes the mean difference over the resampled grid; this counts
    both training noise and test-set sampling. Returns {"difference", "ci", "seeds", "images", "n_boot", "seed"}.
    """
    a, b = np.asarray(values_a, float), np.asarray(values_b, float)
    if a.shape != b.shape or a.ndim != 2 or min(a.shape) < 2:
        raise ValueError(f"need two (seeds, images) arrays of equal shape, each side >= 2; got {a.shape}, {b.shape}.")
    d = a - b
    rng = np.random.default_rng(seed)
    s_idx = rng.integers(0, d.shape[0], (n_boot, d.shape[0]))
    i_idx = rng.integers(0, d.shape[1], (n_boot, d.shape[1]))
    draws = np.concatenate(  # in blocks of 10,000 draws: (block, S, N) floats at a time, not (n_boot, S, N)
        [
            np.take_along_axis(d[s_idx[k : k + 10_000]], i_idx[k : k + 10_000, None, :], axis=2).mean(axis=(1, 2))
            for k in range(0, n_boot, 10_000)
        ]
    )
    return {
        "difference": float(d.mean()),
        "ci": _percentile(draws, confidence),
        "seeds": int(d.shape[0]),
        "images": int(d.shape[1]),
        "n_boot": n_boot,
        "seed": seed,
    }


def endpoint_monte_carlo_sd(
    bootstrap: Callable[..., dict], values_a: np.ndarray, values_b: np.ndarray, n_boot: int, repeats: int = 20
) -> dict:
    """How much a bootstrap interval's endpoints move with the bootstrap's own random draws.

    Runs ``bootstrap(values_a, values_b, n_boot, seed)`` (``paired_bootstrap`` or ``hierarchical_bootstrap``) with
    seeds 0 .. ``repeats`` - 1 and returns {"sd": [lower, upper] standard deviations of the endpoints (units of
    the difference), "range": [[min, max] of the lower endpoint], [[min, max] of the upper]], "n_boot",
    "repeats"}: the Monte Carlo error of an endpoint at this number of resamples.
    """
    ends = np.array([bootstrap(values_a, values_b, n_boot, seed)["ci"] for seed in range(repeats)])
    return {
        "sd": [float(x) for x in ends.std(axis=0, ddof=1)],
        "range": [[float(ends[:, k].min()), float(ends[:, k].max())] for k in (0, 1)],
        "n_boot": n_boot,
        "repeats": repeats,
    }
