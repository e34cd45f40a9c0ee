"""Every figure: arrays and plain data in, matplotlib figure out (saved by ``cnnlib.store.artifacts``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns


def plot_examples(
    images: np.ndarray, titles: Sequence[str], ncols: int | None = None, title: str | None = None
) -> plt.Figure:
    """A row (or grid) of uint8 images (N, H, W, 3) with titles, under an optional figure ``title``."""
    ncols = ncols or len(images)
    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.2 * ncols, 2.4 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, label in zip(axes.flat, images, titles):
        ax.imshow(image)
        ax.set_title(label, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _confusion_axes(ax: plt.Axes, matrix: np.ndarray, classes: Sequence[str], title: str, cbar: bool) -> None:
    sns.heatmap(
        np.asarray(matrix),
        annot=True,
        fmt="d",
        cmap="Blues",
        cbar=cbar,
        square=True,
        xticklabels=classes,
        yticklabels=classes,
        ax=ax,
        vmin=0,
    )
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
    matrices: Mapping[str, np.ndarray], classes: Sequence[str], suptitle: str, ncols: int = 3
) -> plt.Figure:
    """Several confusion matrices (one per model) in rows of ``ncols``, sharing class labels."""
    ncols = min(ncols, len(matrices))
    nrows = int(np.ceil(len(matrices) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.9 * ncols, 3.9 * nrows), squeeze=False)
    for ax in axes.flat[len(matrices) :]:
        ax.axis("off")
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


def plot_argmax_patches(
    image: np.ndarray, boxes: Sequence[tuple[int, int, int, int]], labels: Sequence[str], title: str
) -> plt.Figure:
    """The image with each box drawn, then each box's crop, labelled (the reference's Tables 8-9, 11)."""
    crops = [image[top:bottom, left:right] for top, left, bottom, right in boxes]
    fig, axes = _input_and_panels(image, list(zip(crops, labels)), title)
    for box in boxes:
        _draw_box(axes[0], box)
    return fig


def plot_patches_of(image: np.ndarray, patches: Sequence, title: str) -> plt.Figure:
    """``plot_argmax_patches`` for ``interpret.patches.Patch`` objects, labelled channel, position and box size."""
    labels = [f"ch {p.channel} at ({p.row},{p.col})\n{p.box[2] - p.box[0]}x{p.box[3] - p.box[1]} px" for p in patches]
    return plot_argmax_patches(image, [p.box for p in patches], labels, title)


def plot_top_patches(crops: Mapping[str, Sequence[np.ndarray]], title: str) -> plt.Figure:
    """One row per channel, its top-k crops left to right (highest activation first)."""
    k = max(len(c) for c in crops.values())
    fig, axes = plt.subplots(
        len(crops),
        k + 1,
        figsize=(1.25 * (k + 1), 1.3 * len(crops) + 0.5),
        squeeze=False,
        gridspec_kw={"width_ratios": [0.9] + [1] * k},
    )
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


def plot_gradcam_grid(
    images: np.ndarray,
    cams: np.ndarray,
    classes: Sequence[str],
    title: str,
    alpha: float = 0.45,
    column_titles: Sequence[str] | None = None,
) -> plt.Figure:
    """Table 13: rows = images (N, H, W, 3), columns = target classes; ``cams`` (N, K, H, W) in [0, 1] overlaid.

    ``column_titles`` replaces the "target: class" column titles (e.g. to compare two upsamplings).
    """
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
                ax.set_title(column_titles[j] if column_titles else f"target: {classes[j]}", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"image: {classes[i]}" if n == len(classes) else f"image {i}", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    fig.colorbar(heat, cax=fig.add_axes((0.94, 0.15, 0.015, 0.7)), label="Grad-CAM (normalised)")
    return fig


# --------------------------------------------------------------------------- statistics and sanity figures


def plot_seed_spread(rows: Sequence[Mapping], title: str, splits: Sequence[str] = ("val", "test")) -> plt.Figure:
    """One dot per run, mean +/- sd bar per model, for each split (rows: {"model", split: accuracy})."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(splits), figsize=(5.2 * len(splits), 3.6), sharey=True, squeeze=False)
    for ax, split in zip(axes[0], splits):
        for i, model in enumerate(models):
            values = np.array([r[split] for r in rows if r["model"] == model])
            ax.scatter(np.full(len(values), i) + np.linspace(-0.12, 0.12, len(values)), 100 * values, s=14, alpha=0.6)
            ax.errorbar(
                i + 0.3,
                100 * values.mean(),
                yerr=100 * values.std(ddof=1) if len(values) > 1 else 0,
                fmt="o",
                color="black",
                capsize=3,
            )
        ax.set_xticks(range(len(models)), models, rotation=30, ha="right")
        ax.set_title(f"{split} accuracy", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_ylabel("accuracy (%)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_randomization_curves(results: Mapping[str, Sequence[Mapping]], title: str) -> plt.Figure:
    """Spearman and SSIM against the original maps as layers are re-initialised from the top (one line per method)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for method, rows in results.items():
        labels = [r["randomized_down_to"] for r in rows]
        for ax, key in zip(axes, ("spearman", "ssim")):
            ax.plot(range(len(rows)), [r[key] for r in rows], marker="o", label=method)
            ax.set_xticks(range(len(rows)), labels, rotation=30, ha="right")
    for ax, key in zip(axes, ("Spearman rank correlation", "SSIM")):
        ax.set(title=key, xlabel="re-initialised from the top down to", ylim=(-0.2, 1.05))
        ax.axhline(0, color="grey", lw=0.5)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("similarity to the trained model's map")
    axes[1].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_map_grid(
    image: np.ndarray, maps: Mapping[str, Sequence[np.ndarray]], column_titles: Sequence[str], title: str
) -> plt.Figure:
    """Rows = methods, columns = conditions; each (H, W) map shown on its own scale, the input on the left."""
    ncols = len(column_titles) + 1
    fig, axes = plt.subplots(len(maps), ncols, figsize=(1.7 * ncols, 1.8 * len(maps) + 0.5), squeeze=False)
    for row, (method, method_maps) in zip(axes, maps.items()):
        row[0].imshow(image)
        row[0].set_ylabel(method, fontsize=8)
        for ax, m in zip(row[1:], method_maps):
            ax.imshow(m, cmap="inferno")
    for ax, label in zip(axes[0, 1:], column_titles):
        ax.set_title(label, fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_deletion_insertion(curves: Mapping[str, Mapping[str, np.ndarray]], title: str) -> plt.Figure:
    """Mean deletion and insertion curves per method ({method: {"deletion": (N, S), "insertion": (N, S)}})."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for method, c in curves.items():
        for ax, key in zip(axes, ("deletion", "insertion")):
            x = np.linspace(0, 100, c[key].shape[1])
            ax.plot(x, c[key].mean(axis=0), label=method)
    axes[0].set(
        title="deletion (lower is better)",
        xlabel="% of pixels replaced by blur, most important first",
        ylabel="mean probability of the true class",
    )
    axes[1].set(title="insertion (higher is better)", xlabel="% of pixels restored, most important first")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_confusion_full(matrix: np.ndarray, classes: Sequence[str], title: str) -> plt.Figure:
    """One row-normalised confusion matrix for many classes (e.g. 96 x 96), sized for a full page width.

    Rows are true classes, columns predicted; colour is the share of the row (0..1); no cell numbers. Every
    class is named on both axes in type as large as one row allows (about 4 pt at 96 classes on a 16.5 cm wide
    figure): save it at 300 dpi so the names stay sharp when the PDF is zoomed.

    Args:
        matrix: (K, K) counts, rows true, columns predicted.
        classes: the K class names, in the matrix's order.
        title: the figure's title (name the model and, for VGG19, its weights).

    Returns:
        The figure (7.0 x 7.4 in).
    """
    matrix = np.asarray(matrix, dtype=float)
    n = len(classes)
    if matrix.shape != (n, n):
        raise ValueError(f"confusion matrix is {matrix.shape}; expected ({n}, {n}) for {n} class names.")
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = float(np.clip(380 / n, 3.6, 8))  # points per class name: one row of the ~5.6 in matrix
    fig, ax = plt.subplots(figsize=(7.0, 7.4))
    image = ax.imshow(shares, cmap="magma_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(range(n), classes, rotation=90, fontsize=size)
    ax.set_yticks(range(n), classes, fontsize=size)
    ax.tick_params(length=1, width=0.3, pad=1)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.015, label="share of the true class")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_methods_on_images(
    images: np.ndarray, maps: Mapping[str, np.ndarray], column_titles: Sequence[str], title: str
) -> plt.Figure:
    """Top row the (K, H, W, 3) images under their class headers, then one row per method of its (K, H, W)
    maps, each map on its own scale, with the row's colour scale at its right end.

    Non-negative maps use "inferno" from 0 to the map's own maximum; signed maps (e.g. occlusion's score drops)
    a diverging map centred at 0, from minus to plus the map's largest absolute value.
    """
    rows, columns = len(maps) + 1, len(images)
    fig = plt.figure(figsize=(1.7 * columns + 1.9, 1.6 * rows + 0.5))
    grid = fig.add_gridspec(rows, columns + 1, width_ratios=[1] * columns + [0.07], wspace=0.05, hspace=0.08)
    for c, (image, label) in enumerate(zip(images, column_titles)):
        ax = fig.add_subplot(grid[0, c])
        ax.imshow(image)
        ax.set_title(label, fontsize=12, fontweight="bold")
        ax.set_axis_off()
    for r, (method, method_maps) in enumerate(maps.items(), start=1):
        signed = any(np.min(m) < 0 for m in method_maps)
        for c, m in enumerate(method_maps):
            ax = fig.add_subplot(grid[r, c])
            if signed:
                peak = float(np.abs(m).max()) or 1.0
                shown = ax.imshow(m, cmap="RdBu_r", vmin=-peak, vmax=peak)
            else:
                shown = ax.imshow(m, cmap="inferno", vmin=0, vmax=float(np.max(m)) or 1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(method, fontsize=11)
        scale = fig.colorbar(shown, cax=fig.add_subplot(grid[r, columns]))
        low, high = shown.get_clim()
        scale.set_ticks([low, 0, high] if signed else [low, high])
        scale.set_ticklabels(["-max", "0", "+max"] if signed else ["0", "max"], fontsize=9)
    fig.suptitle(title, fontsize=13)
    fig.subplots_adjust(left=0.06, right=0.93, top=1 - 0.95 / fig.get_figheight(), bottom=0.01)
    return fig
