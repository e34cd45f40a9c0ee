"""Accuracy, confusion matrices and 95% intervals: numbers in, numbers out."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix

from cnnlib.stats.statistics import wilson as wilson_interval  # one Wilson interval (Newcombe 1998, method 3)

if TYPE_CHECKING:
    from cnnlib.backend import keras

Arrays = dict[str, tuple[np.ndarray, np.ndarray]]
SPLIT_ORDER = ("train", "val", "test")


def predict_labels(model: keras.Model, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Arg-max class index per image: int (N,)."""
    from cnnlib.models.forward import predict  # TensorFlow only when a model is evaluated

    return np.argmax(predict(model, x, batch_size=batch_size), axis=1)


def split_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict:
    """Accuracy with its Wilson 95% interval and the confusion matrix (rows true, columns predicted)."""
    correct, total = int(np.sum(y_true == y_pred)), int(len(y_true))
    low, high = wilson_interval(correct, total)
    matrix = confusion_matrix(y_true, y_pred, labels=list(range(n_classes)))
    return {
        "accuracy": correct / total,
        "correct": correct,
        "n": total,
        "ci95": [round(low, 6), round(high, 6)],
        "confusion": matrix.tolist(),
    }


def evaluate(model: keras.Model, data: Arrays, n_classes: int) -> dict[str, dict]:
    """``split_metrics`` for every split in ``data``."""
    return {split: split_metrics(y, predict_labels(model, x), n_classes) for split, (x, y) in data.items()}


def best_by(metrics: dict[str, dict[str, dict]], split: str = "val") -> str:
    """Name of the model with the highest accuracy on ``split``; ties go to the earlier (simpler) model."""
    return max(metrics, key=lambda name: (metrics[name][split]["accuracy"], -list(metrics).index(name)))


def accuracy_table(metrics: dict[str, dict[str, dict]]) -> pd.DataFrame:
    """One row per model: accuracy (%) with its 95% Wilson interval for each split."""
    rows = {}
    for name, per_split in metrics.items():
        ordered = [s for s in SPLIT_ORDER if s in per_split] + [s for s in per_split if s not in SPLIT_ORDER]
        rows[name] = {
            split: f"{100 * per_split[split]['accuracy']:.1f}% "
            f"[{100 * per_split[split]['ci95'][0]:.0f}, {100 * per_split[split]['ci95'][1]:.0f}]"
            for split in ordered
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def mean_sd(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0 for a single value)."""
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Recall of each class, float (n_classes,); NaN for a class with no test image."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    counts = np.bincount(y_true, minlength=n_classes).astype(float)
    hits = np.bincount(y_true[y_true == y_pred], minlength=n_classes).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, hits / counts, np.nan)


def mean_per_class_accuracy(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> dict:
    """Mean per-class accuracy (the usual Caltech-101 figure) with a stratified bootstrap interval.

    Each bootstrap replicate resamples the test images of every class with replacement, within the
    class (class sizes fixed), and recomputes the mean of the per-class accuracies; the interval is
    the replicates' ``level`` percentile range. Returns {"mean", "ci", "level", "n_boot", "per_class"}.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    per_class = per_class_accuracy(y_true, y_pred, n_classes)
    present = np.flatnonzero(~np.isnan(per_class))
    rng = np.random.default_rng(seed)
    replicates = np.zeros(n_boot)
    for c in present:
        right = (y_pred[y_true == c] == c).astype(float)
        draws = rng.integers(0, len(right), size=(n_boot, len(right)))
        replicates += right[draws].mean(axis=1)
    replicates /= len(present)
    tail = (1 - level) / 2
    low, high = np.quantile(replicates, [tail, 1 - tail])
    return {
        "mean": float(np.nanmean(per_class)),
        "ci": [round(float(low), 6), round(float(high), 6)],
        "level": level,
        "n_boot": n_boot,
        "per_class": per_class.tolist(),
    }
