"""Every figure: arrays and plain data in, matplotlib figure out, saved under a stable name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from cnnlib import config


def save_figure(fig: plt.Figure, name: str, folder: Path = config.FIGURES_DIR, dpi: int = 150) -> Path:
    """Save ``fig`` as ``folder/name.png`` without time-stamped metadata, so reruns give equal files."""
    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return path


def plot_examples(images: np.ndarray, titles: Sequence[str], ncols: int | None = None) -> plt.Figure:
    """A row (or grid) of uint8 images (N, H, W, 3) with titles."""
    ncols = ncols or len(images)
    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.2 * ncols, 2.4 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        ax.imshow(image)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def _confusion_axes(ax: plt.Axes, matrix: np.ndarray, classes: Sequence[str], title: str, cbar: bool) -> None:
    sns.heatmap(np.asarray(matrix), annot=True, fmt="d", cmap="Blues", cbar=cbar, square=True,
                xticklabels=classes, yticklabels=classes, ax=ax, vmin=0)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", rotation=45)
    ax.tick_params(axis="y", rotation=0)


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], title: str) -> plt.Figure:
    """One confusion matrix (rows true, columns predicted) as an annotated heatmap with a colour bar."""
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    _confusion_axes(ax, matrix, classes, title, cbar=True)
    fig.tight_layout()
    return fig


def plot_confusion_grid(
    matrices: Mapping[str, np.ndarray], classes: Sequence[str], suptitle: str
) -> plt.Figure:
    """Several confusion matrices side by side (one per model), sharing class labels."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.6 * len(matrices), 3.8), squeeze=False)
    for ax, (title, matrix) in zip(axes.flat, matrices.items()):
        _confusion_axes(ax, matrix, classes, title, cbar=False)
    fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_histories(histories: Mapping[str, Mapping[str, Sequence[float]]]) -> plt.Figure:
    """Training and validation loss / accuracy per epoch, one line pair per model."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 3.8))
    for (name, curves), colour in zip(histories.items(), sns.color_palette("tab10")):
        epochs = np.arange(1, len(curves["loss"]) + 1)
        for ax, key in ((ax_loss, "loss"), (ax_acc, "accuracy")):
            ax.plot(epochs, curves[key], color=colour, lw=1, alpha=0.6)
            ax.plot(epochs, curves[f"val_{key}"], color=colour, lw=2, label=name)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss (thin: train, thick: validation)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy (thin: train, thick: validation)")
    ax_acc.legend(fontsize=8)
    fig.tight_layout()
    return fig
