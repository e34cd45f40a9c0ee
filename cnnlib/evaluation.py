"""Accuracy, confusion matrices and 95% intervals: numbers in, numbers out."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix

from cnnlib.statistics import wilson as wilson_interval  # one Wilson interval (Newcombe 1998, method 3)

if TYPE_CHECKING:
    import keras

Arrays = dict[str, tuple[np.ndarray, np.ndarray]]
SPLIT_ORDER = ("train", "val", "test")


def predict_labels(model: keras.Model, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Arg-max class index per image: int (N,)."""
    return np.argmax(model.predict(x, batch_size=batch_size, verbose=0), axis=1)


def split_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict:
    """Accuracy with its Wilson 95% interval and the confusion matrix (rows true, columns predicted)."""
    correct, total = int(np.sum(y_true == y_pred)), int(len(y_true))
    low, high = wilson_interval(correct, total)
    matrix = confusion_matrix(y_true, y_pred, labels=list(range(n_classes)))
    return {"accuracy": correct / total, "correct": correct, "n": total,
            "ci95": [round(low, 6), round(high, 6)], "confusion": matrix.tolist()}


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
