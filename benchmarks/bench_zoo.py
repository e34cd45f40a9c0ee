"""Benchmark: Grad-CAM on keras.applications models (weights=None, 96 px), ours against tf-keras-vis.

Part of `make bench`; alone: `python benchmarks/bench_zoo.py --update` (merges its result into
results/benchmarks.json). Medians after one warm-up call; one process, the same model and image
for both; tf-keras-vis with its linear-score modifier and the same layer (no seeking).
"""

from __future__ import annotations

import sys

import numpy as np  # noqa: E402
from timing import median_seconds, update_benchmarks  # noqa: E402

from cnnlib import config, interpret  # first: imports TensorFlow quietly

sys.path.insert(0, str(config.REPO_ROOT / "tests"))
from test_zoo import ZOO, zoo_model  # noqa: E402  (one definition of the zoo and its layers)


def run(repeats: int = 5) -> dict:
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    x = np.random.default_rng(0).uniform(-1, 1, (1, 96, 96, 3)).astype(np.float32)
    rows = {}
    for name, layer in ZOO.items():
        model = zoo_model(name)
        peer = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)
        ours = 1000 * median_seconds(lambda m=model, k=layer: interpret.grad_cam(m, x, 1, k), repeats, warmup=True)
        theirs = 1000 * median_seconds(
            lambda p=peer, k=layer: p(CategoricalScore([1]), x, penultimate_layer=k, seek_penultimate_conv_layer=False),
            repeats,
            warmup=True,
        )
        rows[name] = {"layer": layer, "ours_ms": ours, "tf_keras_vis_ms": theirs, "speedup": theirs / ours}
    return {"image_size": 96, "weights": "random (weights=None)", "models": rows}


def show(summary: dict) -> None:
    print(f"{'Grad-CAM, one image, ms':24s} {'ours':>8s} {'tf-keras-vis':>13s} {'speed-up':>9s}")
    for name, row in summary["models"].items():
        print(f"{name:24s} {row['ours_ms']:8.1f} {row['tf_keras_vis_ms']:13.1f} {row['speedup']:8.1f}x")


if __name__ == "__main__":
    result = run()
    show(result)
    if "--update" in sys.argv:
        update_benchmarks("gradcam_zoo", result)
