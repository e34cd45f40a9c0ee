"""Benchmark: the same methods on each Keras backend (TensorFlow, JAX, PyTorch where installed), same machine, same run.

    python benchmarks/bench_backends.py [--backends tensorflow,jax,torch] [--json FILE]

Each backend runs in its own process (Keras picks its backend once per process), one after the other, on the same
inputs: VGG19 (random initial weights, seed 42: the speed does not depend on the weights) with the project's 5-class
head at 224 x 224, 8 images. Measured per backend: the VGG19 feature pass (images/s), Grad-CAM (block5_conv4), guided
backpropagation (a class score through the guided copy), Integrated Gradients (16 steps) in ms per image, and
activation maximisation (64 steps on the custom arch1 network, ms per step): the first call (compiling included) and
the median of 3 calls after it. Ratios are against TensorFlow measured in the same run. PyTorch runs with the
interpreter in ``.venv-torch`` (``make venv-torch``) when this one has no torch. Writes results/benchmarks.json key
``backends`` unless --json names a file.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMAGES, IG_STEPS, ASCENT_STEPS, REPEATS = 8, 16, 64, 3
RATED = (  # a rate (..._per_s) or a time per unit
    "vgg19_features_images_per_s",
    "grad_cam_ms_per_image",
    "guided_backprop_ms_per_image",
    "integrated_gradients_ms_per_image",
    "activation_maximisation_ms_per_step",
)


def _timed(fn) -> dict:
    """{"first_s": the first call (compiling included), "median_s": the median of REPEATS calls after it}."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"first_s": round(first, 3), "median_s": round(sorted(times)[REPEATS // 2], 4)}


def measure() -> dict:
    """This process's backend: the timings described in the module docstring."""
    import numpy as np

    from cnnlib import backend, interpret
    from cnnlib.models import architectures, training, vgg19

    base, weights = vgg19.load_base({vgg19.ENV_VAR: "random"})
    model = vgg19.build_classifier(base, vgg19.build_head(tuple(base.output.shape[1:]), 5))
    images = np.random.default_rng(0).integers(0, 256, (IMAGES, 224, 224, 3), dtype=np.uint8)
    x = vgg19.preprocess(images)
    targets = [i % 5 for i in range(IMAGES)]
    one_hot = np.eye(5, dtype=np.float32)[targets]
    training.set_seed(42)
    arch1 = architectures.build_model("arch1")
    out = {"backend": backend.NAME, "versions": backend.versions(), "weights": weights.label}
    features = _timed(lambda: vgg19.extract_features(base, images))
    out["vgg19_features_images_per_s"] = round(IMAGES / features["median_s"], 2)
    out["vgg19_features_first_call_s"] = features["first_s"]
    per_image = {
        "grad_cam": lambda: interpret.grad_cam(model, x, targets, "block5_conv4"),
        "guided_backprop": lambda: interpret.guided_backprop(model, x, None, weights=one_hot),
        "integrated_gradients": lambda: interpret.integrated_gradients(model, x[:2], targets[:2], steps=IG_STEPS),
    }
    for name, fn in per_image.items():
        timing = _timed(fn)
        rows = 2 if name == "integrated_gradients" else IMAGES
        out[f"{name}_ms_per_image"] = round(1000 * timing["median_s"] / rows, 1)
        out[f"{name}_first_call_s"] = timing["first_s"]
    ascent = _timed(lambda: interpret.activation_maximisation(arch1, 3, "conv2", steps=ASCENT_STEPS))
    out["activation_maximisation_ms_per_step"] = round(1000 * ascent["median_s"] / ASCENT_STEPS, 2)
    out["activation_maximisation_first_call_s"] = ascent["first_s"]
    return out


def _python_for(name: str) -> str | None:
    """An interpreter that has ``name``'s package: this one, or .venv-torch's for PyTorch; None if neither."""
    if importlib.util.find_spec(name) is not None:
        return sys.executable
    other = REPO / ".venv-torch" / "bin" / "python"
    return str(other) if name == "torch" and other.is_file() else None


def run(backends: tuple[str, ...] = ("tensorflow", "jax", "torch")) -> dict:
    """Every backend of ``backends`` that is installed, each in a fresh process; ratios against TensorFlow."""
    result: dict = {"images": IMAGES, "image_size": 224, "cpus": os.cpu_count(), "backends": {}, "skipped": []}
    for name in backends:
        python = _python_for(name)
        if python is None:
            result["skipped"].append(f"{name}: not installed")
            continue
        env = {**os.environ, "KERAS_BACKEND": name, "PYTHONPATH": str(REPO)}
        done = subprocess.run(
            [python, __file__, "--worker"], env=env, capture_output=True, text=True, cwd=REPO, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"the {name} worker failed:\n{done.stderr[-3000:]}")
        result["backends"][name] = json.loads(done.stdout.strip().splitlines()[-1])
    reference = result["backends"].get("tensorflow")
    for name, measured in result["backends"].items():
        if reference is None or name == "tensorflow":
            continue
        measured["speed_vs_tensorflow"] = {  # above 1: faster than TensorFlow (a rate over a rate, a time under a time)
            key: round(measured[key] / reference[key] if key.endswith("_per_s") else reference[key] / measured[key], 2)
            for key in RATED
        }
    return result


def show(result: dict) -> None:
    keys = list(RATED)
    names = list(result["backends"])
    print(f"{'':40s}" + "".join(f"{n:>14s}" for n in names))
    for key in keys:
        print(f"{key:40s}" + "".join(f"{result['backends'][n][key]:14}" for n in names))
    for name in names[1:]:
        print(f"{name} speed / TensorFlow's (above 1: faster):", result["backends"][name].get("speed_vs_tensorflow"))
    for line in result["skipped"]:
        print("skipped:", line)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--json", help="write the result here instead of results/benchmarks.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure()))
        return
    result = run(tuple(args.backends.split(",")))
    show(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    else:
        sys.path.insert(0, str(REPO / "benchmarks"))
        from timing import update_benchmarks

        update_benchmarks("backends", result)


if __name__ == "__main__":
    main()
