"""Inference on test accuracy: per-image prediction records, paired and unpaired intervals, McNemar with Holm,
t-intervals over runs, and "best by validation" with its ties.

Pure NumPy / SciPy, no TensorFlow: numbers in, numbers out. Conventions: "correct" vectors are bool (N,) per
test image, differences are accuracy(A) - accuracy(B) as proportions (not percent), intervals are two-sided
at ``confidence`` (95% by default), and every function that draws random numbers takes an explicit seed.

Which data an interval is about matters more than how it is computed (``SPLIT_ROLE``): intervals on training
accuracy (data the weights were fitted to) and validation accuracy (used for early stopping and to choose the
model) are descriptive only; inference is about the held-out test images.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

Z95 = 1.959964  # two-sided 95% normal quantile, the value evaluation.wilson_interval uses

SPLIT_ROLE = {
    "train": "descriptive only: the images the weights were fitted to",
    "val": "descriptive only: used for early stopping and to choose the model",
    "test": "inferential: held out from training and from every choice",
}


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}.")
    return Z95 if confidence == 0.95 else float(stats.norm.ppf(0.5 + confidence / 2))


# ----------------------------------------------------------------------------- per-image prediction records


@dataclass(frozen=True)
class Predictions:
    """One model's test predictions: ``ids`` (N,), ``y_true``/``y_pred`` int (N,), ``probabilities`` (N, C)."""

    ids: tuple[str, ...]
    classes: tuple[str, ...]
    y_true: np.ndarray
    y_pred: np.ndarray
    probabilities: np.ndarray

    @property
    def correct(self) -> np.ndarray:
        """bool (N,): predicted label equals the true label."""
        return self.y_pred == self.y_true

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())


def prediction_record(
    probabilities: np.ndarray, y_true: np.ndarray, image_ids: Sequence[str], classes: Sequence[str], digits: int = 4
) -> dict:
    """A compact JSON-able record of one model's test predictions.

    ``probabilities``: (N, C) softmax outputs; ``y_true``: int (N,); ``image_ids``: N strings (e.g. the
    manifest paths "class/image_0001.jpg"). Predicted labels are the arg-max of the *unrounded* probabilities;
    the stored probabilities are rounded to ``digits`` decimals so that results files stay byte-stable
    across machines (float noise sits far below 10**-digits). Returns {"ids", "classes", "y_true",
    "y_pred", "probabilities", "digits"}.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(y_true)
    if p.ndim != 2 or p.shape[1] != len(classes):
        raise ValueError(f"probabilities must be (N, {len(classes)}) for classes {list(classes)}; got shape {p.shape}.")
    if len(y) != len(p) or len(image_ids) != len(p):
        raise ValueError(f"{len(p)} probability rows, {len(y)} labels and {len(image_ids)} image ids: they must match.")
    if not np.all(np.isfinite(p)) or p.min() < -1e-6 or p.max() > 1 + 1e-6:
        raise ValueError("probabilities must be finite and in [0, 1] (pass the softmax output, not logits).")
    if len(y) and (y.min() < 0 or y.max() >= len(classes)):
        raise ValueError(f"true labels must be class indices 0..{len(classes) - 1}.")
    if len(set(image_ids)) != len(image_ids):
        raise ValueError("image ids must be unique.")
    return {
        "ids": [str(i) for i in image_ids],
        "classes": [str(c) for c in classes],
        "y_true": [int(v) for v in y],
        "y_pred": [int(v) for v in np.argmax(p, axis=1)],
        "probabilities": [[round(float(v), digits) for v in row] for row in p],
        "digits": int(digits),
    }


def read_prediction_record(record: Mapping) -> Predictions:
    """A ``Predictions`` from a ``prediction_record`` dict (e.g. read back from results/*.json)."""
    missing = {"ids", "classes", "y_true", "y_pred", "probabilities"} - set(record)
    if missing:
        raise ValueError(f"prediction record lacks {sorted(missing)}; write it with statistics.prediction_record().")
    n = len(record["ids"])
    if not len(record["y_true"]) == len(record["y_pred"]) == len(record["probabilities"]) == n:
        raise ValueError("prediction record: ids, y_true, y_pred and probabilities differ in length.")
    return Predictions(
        tuple(record["ids"]),
        tuple(record["classes"]),
        np.asarray(record["y_true"], int),
        np.asarray(record["y_pred"], int),
        np.asarray(record["probabilities"], float).reshape(n, -1),
    )


def aligned_correct(a: Predictions, b: Predictions) -> tuple[np.ndarray, np.ndarray]:
    """The two models' correct vectors, after checking that they score the same images with the same labels."""
    if a.ids != b.ids:
        first = next((i for i, (x, y) in enumerate(zip(a.ids, b.ids)) if x != y), min(len(a.ids), len(b.ids)))
        raise ValueError(
            f"the two records score different images (first difference at position {first}); "
            "paired comparisons need the same test images in the same order."
        )
    if not np.array_equal(a.y_true, b.y_true):
        raise ValueError("the two records disagree on the true labels of the same images.")
    return a.correct, b.correct


# ----------------------------------------------------------------------------- single and unpaired proportions


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``successes / n`` (Newcombe 1998, method 3)."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0; got {successes} of {n}.")
    z, p = _z(confidence), successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_unpaired_interval(x1: int, n1: int, x2: int, n2: int, confidence: float = 0.95) -> tuple[float, float]:
    """Interval for p1 - p2 of two independent proportions: Newcombe's (1998) hybrid score method 10
    (Wilson intervals for each proportion, combined by "square and add")."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, confidence)
    l2, u2 = wilson(x2, n2, confidence)
    d = p1 - p2
    return d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def count_from_accuracy(accuracy: float, n: int, what: str = "accuracy") -> int:
    """The number of correct images behind ``accuracy`` on ``n`` images; an error if it is not a whole number."""
    count = accuracy * n
    if abs(count - round(count)) > 1e-6:
        raise ValueError(
            f"{what} {accuracy} on {n} images is {count:g} images, not a whole number: it is not "
            "a plain proportion of these images, so no interval for it can be computed from counts."
        )
    return int(round(count))


def against_reference(
    our_correct: int,
    our_n: int,
    reference_accuracy: float,
    reference_n: int,
    split: str = "test",
    confidence: float = 0.95,
) -> dict:
    """Our accuracy minus the reference's, two independent samples (different test sets): Newcombe method 10.

    Unlike "is the reference's value inside our interval", this counts the reference's own sampling error.
    Returns {"ours", "reference", "difference", "ci", "role", "method"}; ``role`` says whether the split
    supports inference (test) or is descriptive only (train, val).
    """
    ref_correct = count_from_accuracy(reference_accuracy, reference_n, f"reference {split} accuracy")
    low, high = newcombe_unpaired_interval(our_correct, our_n, ref_correct, reference_n, confidence)
    return {
        "ours": our_correct / our_n,
        "reference": ref_correct / reference_n,
        "difference": our_correct / our_n - ref_correct / reference_n,
        "ci": [low, high],
        "role": SPLIT_ROLE.get(split, "unknown split"),
        "method": "Newcombe (1998) method 10, independent samples",
    }


# ----------------------------------------------------------------------------- paired proportions


def paired_table(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, int]:
    """Counts of the paired 2x2 table: both right, only A right, only B right, neither, and n."""
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"correct vectors must be 1-D and of equal length; got {a.shape} and {b.shape}.")
    return {
        "both": int(np.sum(a & b)),
        "a_only": int(np.sum(a & ~b)),
        "b_only": int(np.sum(~a & b)),
        "neither": int(np.sum(~a & ~b)),
        "n": int(len(a)),
    }


def newcombe_paired_interval(
    both: int, a_only: int, b_only: int, neither: int, confidence: float = 0.95, phi_correction: bool = True
) -> tuple[float, float]:
    """Interval for accuracy(A) - accuracy(B) on the same images: Newcombe's (1998, Stat Med 17:2635) method 10.

    Wilson intervals for both marginal accuracies, combined by square-and-add with the correlation phi of the
    paired table. ``phi_correction`` (default, as Newcombe's method 10 and Fagerland et al. 2017): a positive
    numerator AD - BC is reduced by n/2 (floored at 0); with False, the plain phi.
    """
    n = both + a_only + b_only + neither
    p1, p2 = (both + a_only) / n, (both + b_only) / n
    l1, u1 = wilson(both + a_only, n, confidence)
    l2, u2 = wilson(both + b_only, n, confidence)
    margins = (both + a_only) * (b_only + neither) * (both + b_only) * (a_only + neither)
    phi = 0.0
    if margins > 0:
        numerator = both * neither - a_only * b_only
        if phi_correction and numerator > 0:
            numerator = max(numerator - n / 2, 0.0)
        phi = numerator / math.sqrt(margins)
    d = p1 - p2
    low = d - math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    high = d + math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    return max(-1.0, low), min(1.0, high)


def mcnemar_p(a_only: int, b_only: int) -> float:
    """McNemar's exact two-sided p: the discordant counts against Binomial(a_only + b_only, 1/2); 1 if none."""
    if a_only + b_only == 0:
        return 1.0
    return float(stats.binomtest(a_only, a_only + b_only, 0.5).pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given), capped at 1."""
    p = np.asarray(p_values, float)
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()


def paired_difference(correct_a: np.ndarray, correct_b: np.ndarray, confidence: float = 0.95) -> dict:
    """Effect and test for two classifiers on the same images: difference, Newcombe interval, McNemar p."""
    t = paired_table(correct_a, correct_b)
    return {
        **t,
        "difference": (t["a_only"] - t["b_only"]) / t["n"],
        "ci": list(newcombe_paired_interval(t["both"], t["a_only"], t["b_only"], t["neither"], confidence)),
        "p": mcnemar_p(t["a_only"], t["b_only"]),
    }


def mcnemar_family(
    correct: Mapping[str, np.ndarray],
    pairs: Sequence[tuple[str, str]],
    alpha: float = 0.05,
    confidence: float = 0.95,
    tested_alone: tuple[str, str] | None = None,
) -> list[dict]:
    """McNemar's exact test for each (A, B) in ``pairs``; Holm-adjusted across the family of the other pairs.

    ``correct``: {model: bool (N,)} on the same images. ``tested_alone``: the pre-specified primary pair, tested
    at ``alpha`` on its own and left out of the Holm family (its ``p_holm`` is None and ``reject_holm`` compares
    its raw p). One row per pair: A, B, the paired table, the difference with its Newcombe interval (effect
    size), raw p, Holm p, whether it is rejected at ``alpha``, the direction ("A more accurate", "B more
    accurate" or "equal") and ``family_size``, the number of pairs its Holm adjustment ran over (1: alone).
    """
    unknown = sorted({m for pair in pairs for m in pair} - set(correct))
    if unknown:
        raise KeyError(f"no predictions for {unknown}; have {sorted(correct)}.")
    if tested_alone is not None and tuple(tested_alone) not in [tuple(p) for p in pairs]:
        raise ValueError(f"the pair tested alone, {tuple(tested_alone)}, is not among the pairs {list(pairs)}.")
    rows = [{"A": a, "B": b, **paired_difference(correct[a], correct[b], confidence)} for a, b in pairs]
    family = [r for r in rows if tested_alone is None or (r["A"], r["B"]) != tuple(tested_alone)]
    for row, adjusted in zip(family, holm([r["p"] for r in family])):
        row["p_holm"], row["family_size"] = adjusted, len(family)
    for row in rows:
        if "p_holm" not in row:
            row["p_holm"], row["family_size"] = None, 1
        row["reject_holm"] = bool((row["p"] if row["p_holm"] is None else row["p_holm"]) < alpha)
        row["direction"] = (
            "A more accurate"
            if row["a_only"] > row["b_only"]
            else "B more accurate"
            if row["b_only"] > row["a_only"]
            else "equal"
        )
    return rows


def primary_comparison(best_custom: str, baseline: str = "vgg19") -> dict:
    """The single pre-specified primary comparison: the best custom network (by validation) against VGG19.

    It is tested at the nominal level on its own; every other comparison is secondary and Holm-adjusted.
    """
    if best_custom == baseline:
        raise ValueError(f"the primary comparison needs a custom network other than {baseline!r}.")
    return {
        "A": best_custom,
        "B": baseline,
        "statement": f"Pre-specified primary comparison: {best_custom} (best custom network by validation "
        f"accuracy, chosen before any test-set result was looked at) against {baseline}, on the "
        "test images: paired difference with Newcombe's interval and McNemar's exact test at 5%; "
        "all other comparisons are secondary and Holm-adjusted.",
    }


# ----------------------------------------------------------------------------- runs over seeds / splits


def t_interval(values: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean, sample sd (ddof 1) and the t-interval of the mean: {"n", "mean", "sd", "ci"}; needs n >= 2."""
    v = np.asarray(values, float)
    if v.ndim != 1 or len(v) < 2:
        raise ValueError(f"a t-interval needs at least 2 values; got {len(np.ravel(v))}.")
    mean, sd = float(v.mean()), float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(v) - 1)) * sd / math.sqrt(len(v))
    return {"n": int(len(v)), "mean": mean, "sd": sd, "ci": [mean - half, mean + half]}


def run_summary(
    rows: Sequence[Mapping],
    by: str = "model",
    splits: Sequence[str] = ("train", "val", "test"),
    confidence: float = 0.95,
) -> dict[str, dict]:
    """{name: {split: t_interval(...)}} over the runs in ``rows`` (dicts with ``by`` and one accuracy per split)."""
    groups: dict[str, list[Mapping]] = {}
    for row in rows:
        groups.setdefault(row[by], []).append(row)
    return {name: {s: t_interval([r[s] for r in group], confidence) for s in splits} for name, group in groups.items()}


def best_with_ties(scores: Mapping[str, float], tolerance: float = 1e-12) -> dict:
    """Highest score; ties disclosed and broken towards the earlier entry of ``scores`` (the simpler model).

    Returns {"pick", "score", "tied" (all models at the top score, in order), "rule"}.
    """
    if not scores:
        raise ValueError("no scores to pick from.")
    top = max(scores.values())
    tied = [m for m, s in scores.items() if s >= top - tolerance]
    rule = (
        "unique maximum"
        if len(tied) == 1
        else f"tie between {', '.join(tied)}: broken towards the first listed (simpler)"
    )
    return {"pick": tied[0], "score": float(top), "tied": tied, "rule": rule}


def picks_with_ties(
    rows: Sequence[Mapping], split: str = "val", exclude: Sequence[str] = ("vgg19",)
) -> dict[str, dict]:
    """``best_with_ties`` on ``split`` for each (split seed, seed) run of ``rows``: {"split S, seed s": ...}."""
    runs: dict[str, dict[str, float]] = {}
    for row in rows:
        if row["model"] not in exclude:
            runs.setdefault(f"split {row['split_seed']}, seed {row['seed']}", {})[row["model"]] = float(row[split])
    return {run: best_with_ties(scores) for run, scores in runs.items()}


def picks_text(picks: Mapping[str, Mapping]) -> str:
    """``picks_with_ties``' result, one line per run: "split S, seed s: model", with the tie rule when tied."""
    return "\n".join(
        f"{run}: {pick['pick']}" + ("" if len(pick["tied"]) == 1 else f"  ({pick['rule']})")
        for run, pick in picks.items()
    )
