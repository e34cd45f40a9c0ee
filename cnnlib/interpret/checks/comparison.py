"""Which explanation to believe: every method through the same sanity and faithfulness checks.

A *method* is ``explain(model, inputs (N, H, W, C) float32, targets int (N,)) -> (N, H, W)`` maps on the
input grid (the ``sanity.Explain`` signature). ``adapters`` builds the compared methods of the method table
(``cnnlib.methods``) in that shape; ``compare_methods`` runs, for one model and one image set:

- cascading randomisation (``sanity.cascade_over_seeds``; Spearman with and without |.|, SSIM, constant
  maps counted, several re-initialisation seeds), summarised at the *full* re-initialisation (every
  listed layer fresh), where a method that depends on the learned weights should have lost its map;
- deletion / insertion curves (``faithfulness.deletion_insertion``) per image, against a smooth random
  baseline (``faithfulness.random_baseline``), with paired bootstrap intervals per method (its mean AUC)
  and for its difference from the baseline (``faithfulness.auc_differences``);

``time_methods`` measures milliseconds per image of each method (wall clock, first call excluded by a warm-up
on one image so that graph tracing is not counted); it is kept apart from ``compare_methods``, whose results
are reproducible while a timing is not (the notebooks show the timings of ``benchmarks/bench_methods.py``).

``verdicts`` reads the results: ``verdicts.summarize`` rebuilds the summary from the per-image records alone (so a
stored record can be checked), ``verdicts.decide`` says which method passes which check.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from cnnlib import interpret, methods
from cnnlib.backend import keras
from cnnlib.interpret.checks import faithfulness, sanity, verdicts
from cnnlib.interpret.gradients import to_heatmap
from cnnlib.interpret.guided_backprop import one_hot_scores
from cnnlib.store import memo

Explain = sanity.Explain
METHOD_NAMES = tuple(method.name for method in methods.compared())  # the ten, in the method table's order


def _per_image_target(fn: Callable[..., np.ndarray], **kwargs) -> Explain:
    """An explain function from ``fn(model, inputs, targets (sequence of K), **kwargs) -> (N, K, ...)``:
    each image gets the map of its own target (one call for all distinct targets)."""

    def explain(model, inputs, targets):
        classes = sorted({int(t) for t in targets})
        maps = np.asarray(fn(model, np.asarray(inputs, np.float32), classes, **kwargs))
        return maps[np.arange(len(inputs)), [classes.index(int(t)) for t in targets]]

    explain.__name__ = getattr(fn, "__name__", "explain")
    return explain


def _gradient_heatmap(fn: Callable[..., np.ndarray], reduce: str, **kwargs) -> Explain:
    """(N, H, W) heat maps from an input attribution ``fn`` (N, K, H, W, C), reduced over colour by ``reduce``.

    The gradient methods compute each target on its own (the same batches whatever the other targets), so
    one target at a time gives the same bits as all at once while holding one (N, H, W, C) array, not K.
    """

    def explain(model, inputs, targets):
        inputs, targets = np.asarray(inputs, np.float32), np.asarray(targets, int)
        heat = np.empty(inputs.shape[:3], np.float32)
        for target in sorted(set(targets.tolist())):
            rows = targets == target
            heat[rows] = to_heatmap(np.asarray(fn(model, inputs, [target], **kwargs))[rows, 0], reduce)
        return heat

    explain.__name__ = getattr(fn, "__name__", "explain")
    return explain


def _class_guided_maps(fn: Callable[..., np.ndarray]) -> Explain:
    """(N, H, W) maps from a "guided gradient" ``fn``: |guided gradient of each image's target class score|,
    summed over colour (as ``sanity.guided_backprop_maps``)."""

    def explain(model, inputs, targets):
        return np.abs(fn(model, inputs, None, weights=one_hot_scores(model, targets))).sum(axis=-1)

    explain.__name__ = getattr(fn, "__name__", "explain")
    return explain


def adapter(method: methods.MethodEntry, layer_name: str | None = None, **settings) -> Explain:
    """``method`` (a method-table entry) as ``explain(model, inputs, targets) -> (N, H, W)``, built from its kind.

    "class map": each image's own target at ``layer_name`` (None: the last convolution), in [0, 1];
    "input attribution": max over colour of |attribution| per pixel, each map scaled to [0, 1] ("max_abs");
    "score drop": the signed drop of the target's score (units of the score); "guided gradient": sum over colour
    of |guided gradient of the target's score|. ``settings`` are the function's keyword arguments.
    """
    function = interpret.function_of(method)
    if method.kind == "class map":
        return _per_image_target(function, layer_name=layer_name, **settings)
    if method.kind == "input attribution":
        return _gradient_heatmap(function, "max_abs", **settings)
    if method.kind == "score drop":
        return _per_image_target(function, **settings)
    if method.kind == "guided gradient":
        return _class_guided_maps(function)
    raise ValueError(f"method {method.name!r} is of kind {method.kind!r}, which gives no per-image map to compare.")


def adapters(
    layer_name: str | None = None,
    smooth_samples: int = 25,
    ig_steps: int = 64,
    scorecam_channels: int | None = None,
    occlusion_patch: int = 32,
    occlusion_stride: int = 16,
    seed: int = 0,
) -> dict[str, Explain]:
    """The compared methods of the method table as ``explain(model, inputs, targets) -> (N, H, W)``, in its order.

    Each is ``adapter(method, layer_name, ...)`` with the settings its table entry names
    (``comparison_settings``): ``scorecam_channels`` caps the channels Score-CAM scores per image (None: all),
    ``smooth_samples`` and ``seed`` set SmoothGrad, ``ig_steps`` Integrated Gradients, ``occlusion_patch`` (a
    square of zeros) and ``occlusion_stride`` the occlusion.
    """
    settings = {
        "smooth_samples": smooth_samples,
        "ig_steps": ig_steps,
        "scorecam_channels": scorecam_channels,
        "occlusion_patch": occlusion_patch,
        "occlusion_stride": occlusion_stride,
        "seed": seed,
    }
    return {
        method.name: adapter(method, layer_name, **{k: settings[s] for k, s in method.comparison_settings.items()})
        for method in methods.compared()
    }


def _checked_maps(name: str, explain: Explain, model: keras.Model, inputs: np.ndarray, targets: np.ndarray):
    maps = np.asarray(explain(model, inputs, targets), np.float32)
    if maps.shape != np.shape(inputs)[:3]:
        raise ValueError(
            f"method {name!r} returned maps of shape {maps.shape}; expected (N, H, W) = {np.shape(inputs)[:3]}."
        )
    return maps


def method_maps(
    model: keras.Model, inputs: np.ndarray, targets: np.ndarray, methods: Mapping[str, Explain]
) -> dict[str, np.ndarray]:
    """{method: (N, H, W) float32 maps} of every method on ``inputs`` (N, H, W, C), ``targets`` int (N,).

    A method whose maps are not (N, H, W) is named in a ``ValueError``. TensorFlow's retracing notes are muted.
    """
    inputs, targets = np.asarray(inputs, np.float32), np.asarray(targets, int)
    with sanity._one_function_per_copy():  # a new batch size retraces once per method: expected, muted
        return {name: _checked_maps(name, explain, model, inputs, targets) for name, explain in methods.items()}


def time_methods(
    model: keras.Model, inputs: np.ndarray, targets: np.ndarray, methods: Mapping[str, Explain]
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """``method_maps`` and wall-clock milliseconds per image of each method.

    Each method first runs on one image (graph tracing and compilation are not counted).
    """
    inputs, targets = np.asarray(inputs, np.float32), np.asarray(targets, int)
    maps, ms = {}, {}
    with sanity._one_function_per_copy():
        for name, explain in methods.items():
            explain(model, inputs[:1], targets[:1])
            start = time.perf_counter()
            maps[name] = _checked_maps(name, explain, model, inputs, targets)
            ms[name] = 1000 * (time.perf_counter() - start) / len(inputs)
    return maps, ms


def integrated_gradients_completeness(
    model: keras.Model, inputs: np.ndarray, targets: np.ndarray, *, steps: int, baseline: float = 0.0
) -> dict:
    """How closely each image's Integrated Gradients map explains its own target's score change (completeness).

    Args:
        model: the classifier (current weights).
        inputs: float32 (N, H, W, C) in the model's input units; targets: int (N,), each image's class.
        steps: Integrated Gradients' steps, as the compared map used them; baseline: the path's start.

    Returns:
        {"steps", "n", "median_relative_error", "max_relative_error", "n_within_1_percent", "relative_error": (N,)
        list}: |sum of attributions - (y_c(x) - y_c(x'))| / |y_c(x) - y_c(x')| per image (``interpret.completeness``),
        one ``integrated_gradients`` call per distinct target.
    """
    x, targets = np.asarray(inputs, np.float32), np.asarray(targets, int)
    error = np.empty(len(x))
    for target in sorted(set(targets.tolist())):
        rows = targets == target
        attributions = interpret.integrated_gradients(model, x[rows], target, steps=steps, baseline=baseline)
        error[rows] = interpret.completeness(model, x[rows], attributions, target, baseline=baseline).relative_error
    return {
        "steps": int(steps),
        "n": int(len(x)),
        "median_relative_error": float(np.median(error)),
        "max_relative_error": float(np.max(error)),
        "n_within_1_percent": int(np.sum(error <= 0.01)),
        "relative_error": np.round(error, 6).tolist(),
    }


def full_reinit_similarity(
    model: keras.Model,
    inputs: np.ndarray,
    targets: np.ndarray,
    methods: Mapping[str, Explain],
    layers: Sequence[str],
    seeds: Sequence[int],
    trained_maps: Mapping[str, np.ndarray] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """The last step of the cascade alone: every layer in ``layers`` re-initialised at once, per seed.

    Same output as ``sanity.cascade_over_seeds`` with one step: {method: {"spearman", "spearman_abs", "ssim",
    "constant_randomized": (S, 1, N), "constant_trained": (N,)}}, at 1/len(layers) of its cost.
    ``trained_maps`` (the trained model's maps, when already computed) are reused.
    """
    return sanity.cascade_over_seeds(
        model, inputs, targets, methods, layers, seeds, steps=[len(layers) - 1], trained_maps=trained_maps
    )


def compare_methods(
    model: keras.Model,
    images: np.ndarray,
    targets: np.ndarray,
    methods: Mapping[str, Explain],
    layers_top_down: Sequence[str],
    *,
    seeds: Sequence[int] = (42, 43, 44),
    steps: int = 20,
    random_draws: int = 10,
    seed: int = 0,
    n_boot: int = 2_000,
    cascade_images: Sequence[int] | None = None,
    full_cascade: bool = True,
    images_per_batch: int = 25,
    to_inputs: Callable[[np.ndarray], np.ndarray] = lambda x: np.asarray(x, np.float32),
    calibration_model: keras.Model | None = None,
    cache: bool = False,
) -> dict:
    """Randomisation and faithfulness of every method on one model and image set.

    ``images`` (N, H, W, C) in pixel space, ``targets`` int (N,), ``to_inputs`` pixels -> model inputs.
    Randomisation runs on the images ``cascade_images`` (indices; None: all), every step of the cascade
    (``sanity.cascade_over_seeds``) or, with ``full_cascade=False``, only the full re-initialisation
    (``full_reinit_similarity``). ``calibration_model``, the same architecture trained independently (another
    seed), gives the line the randomisation is read against: its maps on the same images compared with the
    trained model's (``sanity.map_similarity``). Faithfulness uses all images; ``images_per_batch`` images' curves
    share one ``predict`` call (fewer calls: less per-call overhead).
    Returns {"summary": ``verdicts.summarize`` rows, "per_image": JSON-able record (cascade per method as
    ``sanity.similarity_record`` with (seeds, steps, n) lists, deletion / insertion curves (N, steps + 1)
    per method and for the random baseline)}, reproducible bit for bit (timings: ``time_methods``). With
    ``cache`` the maps, the randomisation and the curves come from ``cnnlib.store.memo`` when the same code, model,
    images and settings ran before.
    """
    run = memo.call if cache else (lambda function, *args, **kwargs: function(*args, **kwargs))
    if random_draws < 10:
        raise ValueError(f"the smooth random baseline needs at least 10 draws to be stable; got {random_draws}.")
    targets = np.asarray(targets, int)
    inputs = to_inputs(images)
    maps = run(method_maps, model, inputs, targets, methods)
    chosen = np.arange(len(images)) if cascade_images is None else np.asarray(cascade_images, int)
    sub_maps = {name: m[chosen] for name, m in maps.items()}
    if full_cascade:
        # the trained model's maps are already computed: the cascade reuses them instead of recomputing
        reuse = {
            name: (lambda m, x, t, name=name: sub_maps[name] if m is model else methods[name](m, x, t))
            for name in methods
        }
        cascade = run(
            sanity.cascade_over_seeds, model, inputs[chosen], targets[chosen], reuse, layers_top_down, list(seeds)
        )
    else:
        cascade = run(
            full_reinit_similarity,
            model,
            inputs[chosen],
            targets[chosen],
            methods,
            layers_top_down,
            list(seeds),
            sub_maps,
        )
    calibration = None
    if calibration_model is not None:
        independent = run(method_maps, calibration_model, inputs[chosen], targets[chosen], methods)
        calibration = {
            name: sanity.similarity_record(sanity.map_similarity(sub_maps[name], independent[name])) for name in methods
        }
    settings = dict(to_inputs=to_inputs, steps=steps, seed=seed, images_per_batch=images_per_batch)
    ordered = {name: maps[name] for name in methods}
    curves = run(faithfulness.curves_of_maps, model, images, ordered, targets, **settings)  # blur computed once
    baseline = f"random (smooth, {random_draws} draws)"
    curves[baseline] = run(
        faithfulness.random_baseline,
        model,
        images,
        targets,
        draws=random_draws,
        seed=seed,
        to_inputs=to_inputs,
        steps=steps,
        images_per_batch=images_per_batch,
    )
    record = {
        "methods": list(methods),
        "baseline": baseline,
        "layers_top_down": list(layers_top_down),
        "cascade_steps": "every step" if full_cascade else "full re-initialisation only",
        "cascade_images": chosen.tolist(),
        "seeds": list(seeds),
        "steps": steps,
        "random_draws": random_draws,
        "n_images": int(len(images)),
        "cascade": {name: sanity.similarity_record(per_image) for name, per_image in cascade.items()},
        **({} if calibration is None else {"calibration": calibration}),
        "curves": {name: faithfulness.curves_record(c) for name, c in curves.items()},
    }
    return {"summary": verdicts.summarize(record, n_boot, seed), "per_image": record}
