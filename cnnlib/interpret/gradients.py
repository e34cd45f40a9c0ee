"""Gradient attributions to the input pixels: vanilla gradient, SmoothGrad, Integrated Gradients.

All take the class score y_c *before* softmax (``view.score_source``) with the model's current
weights and return float32 attributions of the input's shape: (N, H, W, C) for one target (an
int), (N, K, H, W, C) for a sequence of K targets (each image, each target). ``to_heatmap``
reduces the colour axis for display.

- ``saliency`` (Simonyan et al., 2014): d y_c / d x.
- ``smooth_grad`` (Smilkov et al., 2017): the mean of d y_c / d x over ``samples`` noisy copies
  x + sigma * eps, eps ~ N(0, 1) from ``numpy.random.default_rng(seed).standard_normal((samples,
  N, H, W, C))`` and sigma = ``noise`` * (max(x) - min(x)) per image (the paper's noise level,
  tf-keras-vis's convention). Signed gradients are averaged (tf-keras-vis averages |gradients|).
- ``integrated_gradients`` (Sundararajan et al., 2017): (x - x') * the path integral of the
  gradient from the baseline x' to x, by the midpoint Riemann sum on ``steps`` equal intervals
  (``steps`` gradient evaluations, at x' + (k + 1/2)/steps (x - x')); completeness: sum =
  y_c(x) - y_c(x') up to the rule's error. The midpoint rule is second order only for a smooth path
  gradient; along the path a ReLU network's gradient is piecewise constant and jumps at every kink it
  crosses, so the error is first order (about 1/steps per jump) and depends on the network and the
  image: measured at 64 steps from a black baseline on two random images, 2.4% and 0.5% on arch1,
  0.3% and 0.01% on arch3 (random biases). Report each map's completeness error rather than assuming
  one. The midpoint rule never evaluates the gradient at the baseline itself, where a ReLU network with zero
  biases and a zero baseline sits exactly on every kink (its gradient there is 0, which costs the
  trapezoid rule an error of 1/(2 steps): 0.8% at 64 steps on freshly initialised arch3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from cnnlib import backend
from cnnlib.backend import keras
from cnnlib.interpret.cam import target_tuple
from cnnlib.interpret.view import input_signature, view

__all__ = [
    "Completeness",
    "class_scores",
    "completeness",
    "input_gradients",
    "integrated_gradients",
    "saliency",
    "smooth_grad",
    "to_heatmap",
]

REDUCTIONS = ("max_abs", "sum_abs", "sum")


def _gradient_function(model: keras.Model, score_layer: str | None):
    """Compiled (inputs (B, H, W, C), weights (B, classes)) -> (d sum(weights * scores) / d inputs, scores), on any
    Keras backend (``cnnlib.backend``)."""
    copy = view(model, score_layer=score_layer)
    key = ("input_gradient", backend.NAME)
    if key not in copy.functions:
        probe = keras.Model(copy.inputs, copy.scores)

        def weighted_scores(x, weights):
            scores = keras.ops.cast(probe(x, training=False), "float32")
            return keras.ops.sum(scores * weights), scores

        signature = [input_signature(model), ((None, copy.scores.shape[-1]), "float32")]
        copy.functions[key] = backend.compiled(backend.gradient_function(weighted_scores), copy.pairs, signature)
    return copy.functions[key]


def input_gradients(
    model: keras.Model, inputs: np.ndarray, classes: np.ndarray, score_layer: str | None = None, batch_size: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """d y_{classes[i]} / d x_i for every row i: ((B, H, W, C) gradients, (B,) scores), in batches."""
    x = np.asarray(inputs, np.float32)
    function = _gradient_function(model, score_layer)
    n_classes = view(model, score_layer=score_layer).scores.shape[-1]
    grads, scores = np.empty_like(x), np.empty(len(x), np.float32)  # filled batch by batch: no second copy
    for s in range(0, len(x), batch_size):
        rows = np.asarray(classes[s : s + batch_size], int)
        g, y = function(x[s : s + batch_size], np.eye(n_classes, dtype=np.float32)[rows])
        grads[s : s + batch_size] = backend.to_numpy(g)
        scores[s : s + batch_size] = backend.to_numpy(y)[np.arange(len(rows)), rows]
    return grads, scores


def class_scores(
    model: keras.Model, inputs: np.ndarray, targets: int | Sequence[int], score_layer: str | None = None
) -> np.ndarray:
    """Class scores before softmax: (N,) for one target, (N, K) for K targets (what the attributions explain).

    Args:
        model: a Keras 3 classifier with one image input and one output; its current weights are used.
        inputs: float32 (N, H, W, C) images in the model's input units (uint8-range pixels for the custom networks,
            which rescale inside; ``vgg19.preprocess`` output for VGG19).
        targets: class indices: one int gives (N,); a sequence of K gives (N, K), in its order.
        score_layer: path or unique name of a layer whose output (N, classes) is taken as the class scores; None: the
            class scores before softmax, found by ``score_source``.

    Returns:
        float32 class scores: (N,) for one target, (N, K) for K targets.

    Raises:
        ValueError: if a target is outside 0..classes-1 (or ``targets`` is empty).
        ExplainError: if ``score_layer`` is unknown or ambiguous, or ``model`` cannot be copied (see ``view.view``: not
            one image input and one output, a subclassed model, a layer used twice).
    """
    single, values = target_tuple(model, targets, score_layer)
    x = np.asarray(inputs, np.float32)
    out = np.stack([input_gradients(model, x, np.full(len(x), t), score_layer)[1] for t in values], axis=1)
    return out[:, 0] if single else out


def _per_target(model, inputs, targets, score_layer, attribute) -> np.ndarray:
    single, values = target_tuple(model, targets, score_layer)
    maps = np.stack([attribute(np.asarray(inputs, np.float32), t) for t in values], axis=1)
    return (maps[:, 0] if single else maps).astype(np.float32)


def saliency(
    model: keras.Model,
    inputs: np.ndarray,
    targets: int | Sequence[int],
    score_layer: str | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """Vanilla gradient d y_c / d x: (N, H, W, C), or (N, K, H, W, C) for K targets.

    Args:
        model: a Keras 3 classifier with one image input and one output; its current weights are used.
        inputs: float32 (N, H, W, C) images in the model's input units (uint8-range pixels for the custom networks,
            which rescale inside; ``vgg19.preprocess`` output for VGG19).
        targets: class indices: one int gives (N, H, W, C); a sequence of K gives (N, K, H, W, C), in its order.
        score_layer: path or unique name of a layer whose output (N, classes) is taken as the class scores; None: the
            class scores before softmax, found by ``score_source``.
        batch_size: images per gradient pass.

    Returns:
        float32 gradients of the class score with respect to each input value: (N, H, W, C) for one target,
        (N, K, H, W, C) for K targets; signed, in units of the class score per input unit (``to_heatmap`` reduces the
        colour axis for display).

    Raises:
        ValueError: if a target is outside 0..classes-1 (or ``targets`` is empty).
        ExplainError: if ``score_layer`` is unknown or ambiguous, or ``model`` cannot be copied (see ``view.view``: not
            one image input and one output, a subclassed model, a layer used twice).
    """
    return _per_target(
        model,
        inputs,
        targets,
        score_layer,
        lambda x, t: input_gradients(model, x, np.full(len(x), t), score_layer, batch_size)[0],
    )


def smooth_grad(
    model: keras.Model,
    inputs: np.ndarray,
    targets: int | Sequence[int],
    *,
    samples: int = 25,
    noise: float = 0.2,
    seed: int = 0,
    score_layer: str | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """SmoothGrad, mean gradient over ``samples`` noisy copies (noise std = ``noise`` x each image's range).

    Args:
        model: a Keras 3 classifier with one image input and one output; its current weights are used.
        inputs: float32 (N, H, W, C) images in the model's input units (uint8-range pixels for the custom networks,
            which rescale inside; ``vgg19.preprocess`` output for VGG19).
        targets: class indices: one int gives (N, H, W, C); a sequence of K gives (N, K, H, W, C), in its order.
        samples: noisy copies per image (and target).
        noise: the noise's standard deviation as a fraction of each image's range, max(x) - min(x) over all its pixels
            and colours.
        seed: seed of ``numpy.random.default_rng``; the noise is its ``standard_normal((samples, N, H, W, C))``, the
            same for every target (so an image's noise depends on N and on its place in the batch).
        score_layer: path or unique name of a layer whose output (N, classes) is taken as the class scores; None: the
            class scores before softmax, found by ``score_source``.
        batch_size: noisy copies per gradient pass.

    Returns:
        float32 mean gradients (signed gradients averaged, not their magnitudes): (N, H, W, C) for one target,
        (N, K, H, W, C) for K targets; in units of the class score per input unit.

    Raises:
        ValueError: if ``samples`` < 1 or ``noise`` < 0, or a target is outside 0..classes-1 (or ``targets`` is empty).
        ExplainError: if ``score_layer`` is unknown or ambiguous, or ``model`` cannot be copied (see ``view.view``: not
            one image input and one output, a subclassed model, a layer used twice).
    """
    if samples < 1 or noise < 0:
        raise ValueError(f"SmoothGrad needs samples >= 1 and noise >= 0; got samples={samples}, noise={noise}.")

    def attribute(x, t):
        axes = tuple(range(1, x.ndim))
        sigma = noise * (x.max(axis=axes, keepdims=True) - x.min(axis=axes, keepdims=True))
        rng, n, total = np.random.default_rng(seed), len(x), np.empty_like(x)
        # The noisy copies, sample-major (row r = sample r // N of image r % N), are made one batch at a time:
        # the generator fills its output in order, so the batches hold the numbers of the one-shot draw
        # standard_normal((samples, N, H, W, C)), and the same float32 products and sums; the running sum per
        # image adds the samples in order, as mean(axis=0) does. Same bits, one batch of copies in memory.
        for start in range(0, samples * n, batch_size):
            images = np.arange(start, min(start + batch_size, samples * n)) % n
            noisy = rng.standard_normal((len(images), *x.shape[1:])).astype(np.float32)
            noisy *= sigma[images]
            noisy += x[images]
            grads = input_gradients(model, noisy, np.full(len(images), t), score_layer, batch_size)[0]
            for row, image in enumerate(images):
                if start + row < n:
                    total[image] = grads[row]
                else:
                    total[image] += grads[row]
        return total / np.float32(samples)

    return _per_target(model, inputs, targets, score_layer, attribute)


def integrated_gradients(
    model: keras.Model,
    inputs: np.ndarray,
    targets: int | Sequence[int],
    *,
    baseline: float | np.ndarray = 0.0,
    steps: int = 64,
    score_layer: str | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """Integrated Gradients from ``baseline`` (a value, an image (H, W, C) or one per input), midpoint rule.

    (x - x') times the mean gradient at x' + (k + 1/2) / steps (x - x'), k = 0 .. steps - 1: the midpoint Riemann sum of
    the path integral. The attributions sum to y_c(x) - y_c(x') up to the rule's error (completeness), which for ReLU
    networks is first order in 1 / steps and depends on the network and image (see the module docstring).

    Args:
        model: a Keras 3 classifier with one image input and one output; its current weights are used.
        inputs: float32 (N, H, W, C) images in the model's input units (uint8-range pixels for the custom networks,
            which rescale inside; ``vgg19.preprocess`` output for VGG19).
        targets: class indices: one int gives (N, H, W, C); a sequence of K gives (N, K, H, W, C), in its order.
        baseline: the path's start x' in the model's input units, broadcast to the inputs: a value, an image (H, W, C)
            or one per input (N, H, W, C).
        steps: gradient evaluations per image and target.
        score_layer: path or unique name of a layer whose output (N, classes) is taken as the class scores; None: the
            class scores before softmax, found by ``score_source``.
        batch_size: points of one image's path per gradient pass.

    Returns:
        float32 attributions: (N, H, W, C) for one target, (N, K, H, W, C) for K targets; signed, in units of the class
        score.

    Raises:
        ValueError: if ``steps`` < 1, ``baseline`` does not broadcast to the inputs' shape, or a target is outside
            0..classes-1 (or ``targets`` is empty).
        ExplainError: if ``score_layer`` is unknown or ambiguous, or ``model`` cannot be copied (see ``view.view``: not
            one image input and one output, a subclassed model, a layer used twice).
    """
    if steps < 1:
        raise ValueError(f"Integrated Gradients needs steps >= 1; got {steps}.")

    def attribute(x, t):
        base = np.broadcast_to(np.asarray(baseline, np.float32), x.shape)
        fractions = ((np.arange(steps) + 0.5) / steps).astype(np.float32)
        out = np.empty_like(x)
        for i in range(len(x)):
            path = base[i][None] + fractions[:, None, None, None] * (x[i] - base[i])[None]
            grads = input_gradients(model, path, np.full(len(path), t), score_layer, batch_size)[0]
            out[i] = (x[i] - base[i]) * grads.mean(axis=0)
        return out

    return _per_target(model, inputs, targets, score_layer, attribute)


class Completeness(NamedTuple):
    """How far Integrated Gradients' attributions are from summing to the score change they explain (each (N,))."""

    sums: np.ndarray  # sum of each image's attributions, in class-score units
    changes: np.ndarray  # y_c(x) - y_c(x'), the score change the sum should equal
    relative_error: np.ndarray  # |sums - changes| / |changes| (inf where the change is 0 and the sum is not)


def completeness(
    model: keras.Model,
    inputs: np.ndarray,
    attributions: np.ndarray,
    target: int,
    *,
    baseline: float | np.ndarray = 0.0,
    score_layer: str | None = None,
) -> Completeness:
    """Each map's completeness check: the sum of its attributions against y_c(x) - y_c(x') (Sundararajan et al.).

    Args:
        model: the classifier the attributions were computed on (current weights).
        inputs: float32 (N, H, W, C) images in the model's input units, as given to ``integrated_gradients``.
        attributions: (N, H, W, C) from ``integrated_gradients(model, inputs, target, baseline=baseline)``.
        target: the class index the attributions explain (one int).
        baseline: the path's start x', as given to ``integrated_gradients``.
        score_layer: as given to ``integrated_gradients``.

    Returns:
        ``Completeness`` (sums, changes, relative_error), each float (N,): the rule's error per map, which depends on
        the network, the image and ``steps`` (see the module docstring), so it is reported with each map.

    Raises:
        ValueError: if ``attributions`` is not (N, H, W, C) for the N inputs, or ``target`` is out of range.
    """
    x = np.asarray(inputs, np.float32)
    a = np.asarray(attributions, np.float64)
    if a.shape != x.shape:
        raise ValueError(f"attributions are {a.shape}; expected the inputs' shape {x.shape} (one target).")
    base = np.broadcast_to(np.asarray(baseline, np.float32), x.shape)
    scores = class_scores(model, np.concatenate([x, base]), int(target), score_layer).astype(np.float64)
    sums, changes = a.reshape(len(a), -1).sum(axis=1), scores[: len(x)] - scores[len(x) :]
    gap = np.abs(sums - changes)
    with np.errstate(divide="ignore", invalid="ignore"):
        error = np.where(changes != 0, gap / np.abs(changes), np.where(gap == 0, 0.0, np.inf))
    return Completeness(sums, changes, error)


def to_heatmap(attributions: np.ndarray, reduce: str = "max_abs") -> np.ndarray:
    """(..., H, W, C) attributions -> (..., H, W) over the colour axis, each map divided by its largest magnitude.

    Args:
        attributions: (..., H, W, C) input attributions, e.g. (N, H, W, C) or (N, K, H, W, C) from ``saliency``.
        reduce: how the colour axis is reduced: "max_abs": max_c |a| (tf-keras-vis's saliency map); "sum_abs": sum_c
            |a|; "sum": sum_c a (signed).

    Returns:
        float32 (..., H, W), each (H, W) map divided by its largest magnitude: in [0, 1] for "max_abs" and "sum_abs", in
        [-1, 1] for "sum"; an all-zero map stays zero.

    Raises:
        ValueError: if ``reduce`` is not "max_abs", "sum_abs" or "sum".
    """
    if reduce == "max_abs":
        heat = np.abs(attributions).max(axis=-1)
    elif reduce == "sum_abs":
        heat = np.abs(attributions).sum(axis=-1)
    elif reduce == "sum":
        heat = attributions.sum(axis=-1)
    else:
        raise ValueError(f"reduce={reduce!r}: choose one of {REDUCTIONS}.")
    flat = heat.reshape(-1, *heat.shape[-2:])
    peak = np.abs(flat).reshape(len(flat), -1).max(axis=1)
    return (flat / np.where(peak > 0, peak, 1)[:, None, None]).reshape(heat.shape).astype(np.float32)
