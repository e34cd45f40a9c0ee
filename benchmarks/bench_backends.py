"""Benchmark: the same methods on each Keras backend (TensorFlow, JAX, PyTorch where installed), same machine, same run.

    python benchmarks/bench_backends.py [--backends tensorflow,jax,torch] [--json FILE]
    python benchmarks/bench_backends.py --refs BEFORE,AFTER [--json FILE]

Each backend runs in its own process (Keras picks its backend once per process), one after the other, on the same
inputs: VGG19 (random initial weights, seed 42: the speed does not depend on the weights) with the project's 5-class
head at 224 x 224, 8 images. Measured per backend: the VGG19 feature pass (images/s), Grad-CAM (block5_conv4), guided
backpropagation (a class score through the guided copy), Integrated Gradients (16 steps) in ms per image, and
activation maximisation (64 steps on the custom arch1 network, ms per step): the first call (compiling included) and
the median of 3 calls after it. Ratios are against TensorFlow measured in the same run. PyTorch runs with the
interpreter in ``.venv-torch`` (``make venv-torch``) when this one has no torch. Writes results/benchmarks.json key
``backends`` unless --json names a file.

With ``--refs BEFORE,AFTER`` the same measurements run on TensorFlow with each commit's ``cnnlib`` (a clone each, one
after the other): what a change (e.g. the backend layer) did to TensorFlow's speed; key ``backends_refs``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
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

    from cnnlib import interpret  # first: cnnlib sets the pinned arithmetic before the backend loads
    from cnnlib.models import architectures, training, vgg19

    try:
        from cnnlib import backend

        identity = {"backend": backend.NAME, "versions": backend.versions()}
    except ImportError:  # a commit from before the backend layer (--refs): TensorFlow only
        import keras

        identity = {"backend": keras.backend.backend(), "versions": {}}

    base, weights = vgg19.load_base({vgg19.ENV_VAR: "random"})
    model = vgg19.build_classifier(base, vgg19.build_head(tuple(base.output.shape[1:]), 5))
    images = np.random.default_rng(0).integers(0, 256, (IMAGES, 224, 224, 3), dtype=np.uint8)
    x = vgg19.preprocess(images)
    targets = [i % 5 for i in range(IMAGES)]
    one_hot = np.eye(5, dtype=np.float32)[targets]
    training.set_seed(42)
    arch1 = architectures.build_model("arch1")
    out = {**identity, "weights": weights.label}
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


def _worker(python: str, backend_name: str, root: Path) -> dict:
    """The measurements in a fresh process on ``backend_name``, with the ``cnnlib`` of the checkout at ``root``."""
    env = {**os.environ, "KERAS_BACKEND": backend_name, "PYTHONPATH": str(root)}
    command = [python, __file__, "--worker"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=root, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the {backend_name} worker ({root}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _speed(measured: dict, reference: dict) -> dict:
    """Per rated key, above 1 when ``measured`` is faster than ``reference`` (rate over rate, time under time)."""
    return {
        key: round(measured[key] / reference[key] if key.endswith("_per_s") else reference[key] / measured[key], 2)
        for key in RATED
    }


def run_refs(refs: tuple[str, ...]) -> dict:
    """The same measurements on TensorFlow with each git ref's ``cnnlib`` (a fresh clone each, one after the other, in
    this run): e.g. before and after the backend layer; ratios against the first ref."""
    result: dict = {"images": IMAGES, "image_size": 224, "cpus": os.cpu_count(), "backend": "tensorflow", "refs": {}}
    for ref in refs:
        with tempfile.TemporaryDirectory(prefix="bench-backends-") as tmp:
            root = Path(tmp) / "repo"
            subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(root)], check=True)
            subprocess.run(["git", "checkout", "--quiet", ref], cwd=root, check=True)
            commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout
            result["refs"][ref] = {"commit": commit.strip()[:12], **_worker(sys.executable, "tensorflow", root)}
    first = next(iter(result["refs"].values()))
    for measured in list(result["refs"].values())[1:]:
        measured["speed_vs_first"] = _speed(measured, first)
    return result


def run(backends: tuple[str, ...] = ("tensorflow", "jax", "torch")) -> dict:
    """Every backend of ``backends`` that is installed, each in a fresh process; ratios against TensorFlow."""
    result: dict = {"images": IMAGES, "image_size": 224, "cpus": os.cpu_count(), "backends": {}, "skipped": []}
    for name in backends:
        python = _python_for(name)
        if python is None:
            result["skipped"].append(f"{name}: not installed")
            continue
        result["backends"][name] = _worker(python, name, REPO)
    reference = result["backends"].get("tensorflow")
    for name, measured in result["backends"].items():
        if reference is not None and name != "tensorflow":
            measured["speed_vs_tensorflow"] = _speed(measured, reference)  # above 1: faster than TensorFlow
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
    parser.add_argument(
        "--refs",
        help="comma-separated git refs (first = reference): the same measurements on TensorFlow with each ref's "
        "cnnlib instead of one per backend; results/benchmarks.json key backends_refs",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure()))
        return
    if args.refs:
        result, key = run_refs(tuple(args.refs.split(","))), "backends_refs"
        for ref, measured in result["refs"].items():
            print(ref, {k: measured[k] for k in RATED}, measured.get("speed_vs_first", ""))
    else:
        result, key = run(tuple(args.backends.split(","))), "backends"
        show(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    else:
        sys.path.insert(0, str(REPO / "benchmarks"))
        from timing import update_benchmarks

        update_benchmarks(key, result)


if __name__ == "__main__":
    main()
