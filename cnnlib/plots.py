"""Every figure: arrays and plain data in, matplotlib figure out, saved under a stable name."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from cnnlib import config
from cnnlib.files import atomic_write_bytes


def save_figure(fig: plt.Figure, name: str, folder: Path = config.FIGURES_DIR, dpi: int = 120) -> Path:
    """Save ``fig`` as ``folder/name.png`` without time-stamped metadata, so reruns give equal files."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return atomic_write_bytes(Path(folder) / f"{name}.png", buffer.getvalue())


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


# --------------------------------------------------------------------------- interpretability figures


def plot_feature_maps(maps: np.ndarray, title: str, ncols: int = 8) -> plt.Figure:
    """Every channel of one layer's output (h, w, C) as a grid of small images, each on its own scale."""
    channels = maps.shape[-1]
    ncols = min(ncols, channels)
    nrows = int(np.ceil(channels / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.3 * ncols, 1.4 * nrows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ch, ax in zip(range(channels), axes.flat):
        ax.imshow(maps[..., ch], cmap="viridis")
        ax.set_title(str(ch), fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _draw_box(ax: plt.Axes, box: tuple[int, int, int, int], colour: str = "red") -> None:
    top, left, bottom, right = box
    ax.add_patch(plt.Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False, color=colour, lw=1.5))


def _input_and_panels(image: np.ndarray, panels: Sequence[tuple[np.ndarray, str]], title: str):
    """A row: the input image, then one labelled panel per (array, label). Returns (fig, axes)."""
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(2.3 * (len(panels) + 1), 2.6))
    axes[0].imshow(image)
    axes[0].set_title("input", fontsize=9)
    for ax, (panel, label) in zip(axes[1:], panels):
        ax.imshow(panel)
        ax.set_title(label, fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig, axes


def plot_argmax_patches(image: np.ndarray, boxes: Sequence[tuple[int, int, int, int]], labels: Sequence[str],
                        title: str) -> plt.Figure:
    """The image with each box drawn, then each box's crop, labelled (the reference's Tables 8-9, 11)."""
    crops = [image[top:bottom, left:right] for top, left, bottom, right in boxes]
    fig, axes = _input_and_panels(image, list(zip(crops, labels)), title)
    for box in boxes:
        _draw_box(axes[0], box)
    return fig


def plot_top_patches(crops: Mapping[str, Sequence[np.ndarray]], title: str) -> plt.Figure:
    """One row per channel, its top-k crops left to right (highest activation first)."""
    k = max(len(c) for c in crops.values())
    fig, axes = plt.subplots(len(crops), k + 1, figsize=(1.25 * (k + 1), 1.3 * len(crops) + 0.5), squeeze=False,
                             gridspec_kw={"width_ratios": [0.9] + [1] * k})
    for row, (label, row_crops) in zip(axes, crops.items()):
        for ax in row:
            ax.axis("off")
        row[0].text(0.95, 0.5, label, ha="right", va="center", fontsize=8, transform=row[0].transAxes)
        for ax, crop in zip(row[1:], row_crops):
            ax.imshow(crop)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def gradient_to_image(gradient: np.ndarray) -> np.ndarray:
    """Display a (H, W, 3) input gradient: centre on 0.5, 0.15 per standard deviation, clip to [0, 1]."""
    g = gradient - gradient.mean()
    g = g / (g.std() + 1e-12) * 0.15 + 0.5
    return np.clip(g, 0, 1)


def plot_saliency_row(image: np.ndarray, maps: Mapping[str, np.ndarray], title: str) -> plt.Figure:
    """The input, then each (H, W, 3) gradient map rendered with ``gradient_to_image``."""
    return _input_and_panels(image, [(gradient_to_image(g), label) for label, g in maps.items()], title)[0]


def plot_gradcam_grid(images: np.ndarray, cams: np.ndarray, classes: Sequence[str], title: str,
                      alpha: float = 0.45) -> plt.Figure:
    """Table 13: rows = images (N, H, W, 3), columns = target classes; ``cams`` (N, K, H, W) in [0, 1] overlaid."""
    n, k = cams.shape[:2]
    fig, axes = plt.subplots(n, k, figsize=(1.9 * k + 0.8, 1.9 * n + 0.6), squeeze=False)
    for i in range(n):
        for j in range(k):
            ax = axes[i, j]
            ax.imshow(images[i])
            heat = ax.imshow(cams[i, j], cmap="jet", alpha=alpha, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"target: {classes[j]}", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"image: {classes[i]}" if n == len(classes) else f"image {i}", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    fig.colorbar(heat, cax=fig.add_axes((0.94, 0.15, 0.015, 0.7)), label="Grad-CAM (normalised)")
    return fig
