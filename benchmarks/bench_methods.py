"""Benchmark: ms per image of every explanation method on the best custom network and VGG19, ours against tf-keras-vis.

Part of `make bench`; alone: `python benchmarks/bench_methods.py --update` (merges its result into
results/benchmarks.json under "methods", other keys kept). One image (224 px) at a time; median
of ``repeats`` calls after one untimed warm-up call (which compiles). Both libraries run in this
process on the same model object and image, each with its own full pipeline (ours: maps upsampled
along the receptive fields and scaled; tf-keras-vis: its defaults with ``ReplaceToLinear``, the
same layer, no layer seeking). Weights are random (the architecture of the best custom network by validation
accuracy, from results/custom_summary.json, built fresh;
VGG19 with CNNLIB_VGG19_WEIGHTS=random): timing does not depend on them. Work sizes that differ
from the defaults (``WORK``: fewer Integrated-Gradients steps, occlusion positions, Score-CAM
channels and ascent steps on VGG19; 10 SmoothGrad samples) are the same for both libraries and
stored with the numbers; time scales linearly with them.
"""

from __future__ import annotations

import functools
import sys
import time  # noqa: E402

import numpy as np  # noqa: E402
from timing import median_seconds, update_benchmarks  # noqa: E402

from cnnlib import config, interpret, methods
from cnnlib.models import architectures, training, vgg19  # first: imports TensorFlow quietly
from cnnlib.store import results

SMOOTH_SAMPLES = 10
# work per model: the custom network at the defaults; VGG19 (about 100x the compute) smaller, the same for both
WORK = {
    "custom": {
        "score_cam_channels": None,
        "integrated_gradients_steps": 64,
        "occlusion_patch_stride": (32, 16),
        "activation_maximisation_steps": 32,
    },
    "VGG19": {
        "score_cam_channels": 32,
        "integrated_gradients_steps": 16,
        "occlusion_patch_stride": (32, 32),
        "activation_maximisation_steps": 16,
    },
}


def _models() -> dict:
    training.set_seed(0)
    best = results.read_results("custom_summary")["best_by_val"]  # the network the report explains
    custom = architectures.build_model(architectures.VARIANTS[best][0], name=best)
    convs = interpret.conv_layer_names(custom)
    layer, early = convs[-1], convs[max(len(convs) // 2 - 1, 0)]  # arch3: conv4, conv2; arch1: conv2, conv1
    base, _ = vgg19.load_base(env={vgg19.ENV_VAR: "random"})
    head = vgg19.build_head(tuple(base.output.shape[1:]), len(config.CLASSES))
    image = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    return {
        best: (custom, layer, early, image, (0.0, 255.0)),
        "VGG19": (
            vgg19.build_classifier(base, head),
            "block5_conv4",
            "block3_conv4",
            vgg19.preprocess(image),
            (-124.0, 152.0),
        ),
    }


def _time(fn, repeats: int) -> float:
    """Seconds per call: the median of ``repeats`` after a warm-up; a single timed call when the warm-up took > 5 s."""
    start = time.perf_counter()
    fn()
    if time.perf_counter() - start > 5:
        return median_seconds(fn, 1)
    return median_seconds(fn, repeats)


def _ours(model, layer, early, x, work, value_range) -> dict:
    """{method key: a call timing it}, for every method of the method table whose kind can be timed on one image."""
    t = 1
    at = {"layer_cam": early}  # LayerCAM's case is an early layer, timed where tf-keras-vis's LayerCAM is
    patch, stride = work["occlusion_patch_stride"]
    settings = {  # the work sizes of WORK; every other method at its defaults
        "score_cam": {"channels": work["score_cam_channels"]},
        "smooth_grad": {"samples": SMOOTH_SAMPLES},
        "integrated_gradients": {"steps": work["integrated_gradients_steps"]},
        "occlusion": {"patch": patch, "stride": stride},
        "activation_maximisation": {"steps": work["activation_maximisation_steps"], "value_range": value_range},
    }
    reduce = {"integrated_gradients": "sum"}  # signed attributions: summed over colour (saliency: max |.|)
    calls = {}
    for method in methods.TABLE:
        fn, kw = interpret.function_of(method), settings.get(method.key, {})
        if method.kind == "class map":
            calls[method.key] = functools.partial(fn, model, x, t, at.get(method.key, layer), **kw)
        elif method.kind == "input attribution":
            how = reduce.get(method.key, "max_abs")
            calls[method.key] = lambda fn=fn, kw=kw, how=how: interpret.to_heatmap(fn(model, x, t, **kw), how)
        elif method.kind == "score drop":
            calls[method.key] = functools.partial(fn, model, x, t, **kw)
        elif method.kind == "feature visualisation":
            calls[method.key] = functools.partial(fn, model, 3, layer, **kw)
    return calls


def _theirs(model, layer, early, x, work, value_range) -> dict:
    import tensorflow as tf
    from tf_keras_vis.activation_maximization import ActivationMaximization
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
    from tf_keras_vis.layercam import Layercam
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.scorecam import Scorecam
    from tf_keras_vis.utils.model_modifiers import ExtractIntermediateLayer, ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    score, cap = CategoricalScore([1]), work["score_cam_channels"]
    cams = {
        name: cls(model, model_modifier=ReplaceToLinear(), clone=True)
        for name, cls in (
            ("grad_cam", Gradcam),
            ("grad_cam_plus_plus", GradcamPlusPlus),
            ("layer_cam", Layercam),
            ("score_cam", Scorecam),
        )
    }
    saliency = Saliency(model, model_modifier=ReplaceToLinear(), clone=True)
    maximiser = ActivationMaximization(
        model, model_modifier=[ExtractIntermediateLayer(layer), ReplaceToLinear()], clone=True
    )
    seed = tf.random.uniform((1, *x.shape[1:]), value_range[0], value_range[1])

    def cam(name, at, **kw):
        return lambda: cams[name](score, x, penultimate_layer=at, seek_penultimate_conv_layer=False, **kw)

    return {
        "grad_cam": cam("grad_cam", layer),
        "grad_cam_plus_plus": cam("grad_cam_plus_plus", layer),
        "layer_cam": cam("layer_cam", early),
        "score_cam": cam("score_cam", layer, max_N=cap),
        "saliency": lambda: saliency(score, x),
        "smooth_grad": lambda: saliency(score, x, smooth_samples=SMOOTH_SAMPLES),
        "activation_maximisation": lambda: maximiser(
            lambda out: tf.reduce_mean(out[..., 3], axis=(1, 2)),
            steps=work["activation_maximisation_steps"],
            seed_input=seed,
            input_range=value_range,
            callbacks=[],
        ),
    }


def run(repeats: int = 3) -> dict:
    rows = {}
    for name, (model, layer, early, x, value_range) in _models().items():
        work = WORK.get(name, WORK["custom"])
        ours, theirs = (
            _ours(model, layer, early, x, work, value_range),
            _theirs(model, layer, early, x, work, value_range),
        )
        table = {}
        for method, fn in ours.items():
            row = {"ours_ms": 1000 * _time(fn, repeats)}
            if method in theirs:
                row["tf_keras_vis_ms"] = 1000 * _time(theirs[method], repeats)
                row["speedup"] = row["tf_keras_vis_ms"] / row["ours_ms"]
            table[method] = row
            print(f"  {name} {method}: " + ", ".join(f"{k} {v:.1f}" for k, v in row.items()), flush=True)
        rows[name] = {
            "layer": layer,
            "layer_cam_layer": early,
            "methods": table,
            "work": {
                **work,
                "score_cam_channels": work["score_cam_channels"] or "all",
                "smooth_grad_samples": SMOOTH_SAMPLES,
            },
        }
    return {
        "image_size": 224,
        "images_per_call": 1,
        "repeats": f"median of {repeats} after a warm-up (1 if > 5 s)",
        "weights": "random (timing does not depend on them)",
        "models": rows,
    }


def show(summary: dict) -> None:
    for name, model in summary["models"].items():
        print(f"\n{name} (ms per image)      {'ours':>9s} {'tf-keras-vis':>13s} {'speed-up':>9s}")
        for method, row in model["methods"].items():
            peer = f"{row['tf_keras_vis_ms']:13.1f} {row['speedup']:8.1f}x" if "speedup" in row else f"{'-':>13s}"
            print(f"{method:26s} {row['ours_ms']:9.1f} {peer}")


if __name__ == "__main__":
    result = run()
    show(result)
    if "--update" in sys.argv:
        update_benchmarks("methods", result)
