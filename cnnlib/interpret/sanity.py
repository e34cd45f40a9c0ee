"""Sanity checks for saliency maps (Adebayo et al., 2018) and faithfulness (deletion / insertion curves).

An ``explain`` function maps (model, inputs, targets (N,)) -> importance maps (N, H, W).
``cascading_randomization`` re-initialises layers from the top down and measures how much
the maps change; ``deletion_insertion`` removes / adds pixels in the order a map ranks them
and follows the target class probability (Petsiuk et al., 2018).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf
from scipy import ndimage, stats

from cnnlib.interpret.gradcam import grad_cam
from cnnlib.interpret.guided_backprop import guided_backprop, one_hot_scores

Explain = Callable[[keras.Model, np.ndarray, np.ndarray], np.ndarray]


# ----------------------------------------------------------------------------- explain functions (N, H, W)


def gradcam_maps(model: keras.Model, inputs: np.ndarray, targets: np.ndarray, layer_name: str | None = None) -> np.ndarray:
    """Grad-CAM of each image's own target class, upsampled, in [0, 1]: (N, H, W)."""
    classes = sorted(set(int(t) for t in targets))
    maps = grad_cam(model, inputs, classes, layer_name)
    return maps[np.arange(len(inputs)), [classes.index(int(t)) for t in targets]]


def guided_backprop_maps(model: keras.Model, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """|guided gradient| of each image's target class score (pre-softmax), summed over colour channels: (N, H, W)."""
    weights = one_hot_scores(model, targets)
    return np.abs(guided_backprop(model, inputs, None, weights=weights)).sum(axis=-1)


def guided_gradcam_maps(model: keras.Model, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Guided backprop map times Grad-CAM map, per image: (N, H, W)."""
    return guided_backprop_maps(model, inputs, targets) * gradcam_maps(model, inputs, targets)


def random_maps(seed: int = 0) -> Explain:
    """A baseline explanation: uniform noise, the same for any model."""
    def explain(model, inputs, targets):
        return np.random.default_rng(seed).random(np.asarray(inputs).shape[:3]).astype(np.float32)
    return explain


# ----------------------------------------------------------------------------- similarity of maps


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation of two maps (any shape); 0 when either is constant."""
    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(stats.spearmanr(a, b).statistic)


def ssim(a: np.ndarray, b: np.ndarray, window: int = 7) -> float:
    """Structural similarity of two 2-D maps, each first scaled to [0, 1] (uniform window, data range 1)."""
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


def compare_maps(reference: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """Mean Spearman correlation and SSIM over images of two (N, H, W) map stacks."""
    return {"spearman": float(np.mean([spearman(r, o) for r, o in zip(reference, other)])),
            "ssim": float(np.mean([ssim(r, o) for r, o in zip(reference, other)]))}


# ----------------------------------------------------------------------------- model randomisation


@contextlib.contextmanager
def _one_function_per_copy():
    """Each randomised copy compiles its own gradient function: expected here, so TF's retracing warning is muted."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)


def randomize_layers(model: keras.Model, layer_names: Sequence[str], seed: int) -> keras.Model:
    """A copy of ``model`` whose ``layer_names`` get fresh weights from their own initialisers."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for offset, name in enumerate(layer_names):
        layer = copy.get_layer(name)
        # A fresh initialiser with an explicit seed: the clone's own initialisers drew their seeds
        # from whatever random state the process had, which would make reruns differ.
        config = {**layer.kernel_initializer.get_config(), "seed": seed + offset}
        initializer = layer.kernel_initializer.__class__.from_config(config)
        layer.set_weights([np.asarray(initializer(w.shape)) if i == 0 else np.zeros(w.shape, "float32")
                           for i, w in enumerate(layer.get_weights())])
    return copy


def cascading_randomization(
    model: keras.Model, inputs: np.ndarray, targets: np.ndarray, explain: Explain,
    layers_top_down: Sequence[str], seed: int = 0,
) -> list[dict]:
    """Re-initialise layers from the top down, one more each step; compare each step's maps with the original.

    Returns one row per step: {"randomized_down_to", "spearman", "ssim"}; a map that reflects
    what the model learned should drift towards 0 correlation as more layers are randomised.
    """
    original = explain(model, inputs, targets)
    rows = []
    with _one_function_per_copy():
        for k in range(1, len(layers_top_down) + 1):
            randomized = randomize_layers(model, layers_top_down[:k], seed)
            rows.append({"randomized_down_to": layers_top_down[k - 1],
                         **compare_maps(original, explain(randomized, inputs, targets))})
    return rows


# ----------------------------------------------------------------------------- faithfulness


def deletion_insertion(
    model: keras.Model, images: np.ndarray, maps: np.ndarray, targets: np.ndarray,
    to_inputs: Callable[[np.ndarray], np.ndarray] = lambda x: np.asarray(x, np.float32),
    steps: int = 20, blur_sigma: float = 10.0, seed: int = 0,
) -> dict[str, np.ndarray]:
    """Deletion and insertion curves: target probability as pixels are removed / added in map order.

    Deletion replaces the most important pixels first by a blurred copy of the image;
    insertion starts from the blurred copy and restores the most important pixels first.
    Ties in a map are broken at random (seeded). Returns {"deletion", "insertion"}: (N, steps + 1)
    probabilities at fractions 0, 1/steps, ..., 1 of the pixels.
    """
    rng = np.random.default_rng(seed)
    n, h, w = maps.shape
    curves = {"deletion": np.zeros((n, steps + 1)), "insertion": np.zeros((n, steps + 1))}
    fractions = np.linspace(0, 1, steps + 1)
    for i in range(n):
        image = np.asarray(images[i], np.float32)
        blurred = ndimage.gaussian_filter(image, sigma=(blur_sigma, blur_sigma, 0))
        order = np.lexsort((rng.random(h * w), -maps[i].ravel()))  # most important first, random ties
        rank = np.empty(h * w, int)
        rank[order] = np.arange(h * w)
        rank = rank.reshape(h, w)
        batch = []
        for fraction in fractions:
            top = (rank < round(fraction * h * w))[..., None]
            batch.append(np.where(top, blurred, image))  # deletion
            batch.append(np.where(top, image, blurred))  # insertion
        probs = model.predict(to_inputs(np.stack(batch)), verbose=0, batch_size=64)[:, int(targets[i])]
        curves["deletion"][i], curves["insertion"][i] = probs[0::2], probs[1::2]
    return curves


def area_under(curves: np.ndarray) -> float:
    """Mean over images of the area under (N, steps + 1) curves on [0, 1] (trapezoid rule)."""
    x = np.linspace(0, 1, curves.shape[1])
    return float(np.mean(np.trapezoid(curves, x, axis=1)))


def randomization_examples(
    model: keras.Model, inputs: np.ndarray, targets: np.ndarray, methods: dict[str, Explain],
    layers_top_down: Sequence[str], seed: int = 0,
) -> dict[str, list[np.ndarray]]:
    """Maps of the first input for the trained model and each cascading step: {method: [(H, W), ...]}."""
    with _one_function_per_copy():
        steps = [model] + [randomize_layers(model, layers_top_down[:k], seed) for k in range(1, len(layers_top_down) + 1)]
        return {name: [explain(m, inputs[:1], targets[:1])[0] for m in steps] for name, explain in methods.items()}
