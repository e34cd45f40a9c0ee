"""Benchmark: VGG19 frozen features in float32 vs mixed_bfloat16, and cached-feature head training.

Part of `make bench` (benchmarks/run_all.py); alone: `python benchmarks/bench_vgg19.py`.
Times are medians of several runs in one process;
the machine is shared, so absolute numbers are indications and ratios are the result.
"""

from __future__ import annotations

import os
import resource
import time

import keras  # noqa: E402
from timing import median_seconds  # noqa: E402

from cnnlib import config  # first: imports TensorFlow quietly
from cnnlib.data import images
from cnnlib.models import training, vgg19
from cnnlib.stats import evaluation

REPEATS = 3
BATCH = 32  # images per timed extraction run
EPOCHS = 2  # epochs for the head-training comparison


def extraction_speed(base, images):
    forward = lambda: vgg19.extract_features(base, images)  # noqa: E731
    seconds = median_seconds(forward, REPEATS, warmup=True)  # the warm-up call traces
    return {"images_per_s": len(images) / seconds, "gflop_per_s": len(images) * vgg19.GFLOP_PER_IMAGE / seconds}


def run() -> dict:
    env = {vgg19.ENV_VAR: os.environ.get(vgg19.ENV_VAR, "random")}
    split = images.load_project_split()
    split_hash, arrays = split.split_hash, split.arrays
    sample = arrays["train"][0][:BATCH]
    settings = config.train_settings("full")
    n_classes = len(config.CLASSES)
    report = {}
    accuracy = {}
    for policy in ("float32", "mixed_bfloat16"):
        keras.config.set_dtype_policy(policy)
        base, weights = vgg19.load_base(env)
        report[policy] = extraction_speed(base, sample)
        features = vgg19.cached_features(base, weights, arrays, split_hash)
        keras.config.set_dtype_policy("float32")
        head, _ = vgg19.train_head(features, settings, n_classes)
        accuracy[policy] = {s: m["accuracy"] for s, m in evaluation.evaluate(head, features, n_classes).items()}
        report[policy]["accuracy"] = accuracy[policy]

    # Cached features vs the frozen model trained end to end on images, same epochs.
    keras.config.set_dtype_policy("float32")
    base, weights = vgg19.load_base(env)
    features = vgg19.cached_features(base, weights, arrays, split_hash)
    short = config.TrainSettings(max_epochs=EPOCHS, patience=EPOCHS)
    head_seconds = median_seconds(lambda: vgg19.train_head(features, short, n_classes))
    base.trainable = False
    full = training.compile_model(
        vgg19.build_classifier(base, vgg19.build_head(base.output.shape[1:], n_classes)), short
    )
    prepared = {s: (vgg19.preprocess(x), y) for s, (x, y) in arrays.items() if s in ("train", "val")}
    start = time.perf_counter()
    training.fit(full, prepared, short)
    full_seconds = time.perf_counter() - start

    summary = {
        "weights": weights.label,
        "feature_extraction": report,
        "bf16_speedup": report["mixed_bfloat16"]["images_per_s"] / report["float32"]["images_per_s"],
        "bf16_accuracy_change": {
            s: accuracy["mixed_bfloat16"][s] - accuracy["float32"][s] for s in accuracy["float32"]
        },
        "head_training_seconds": {
            "cached_features": head_seconds,
            "frozen_model_on_images": full_seconds,
            "epochs": EPOCHS,
            "speedup": full_seconds / head_seconds,
        },
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cpu_count": os.cpu_count(),
    }
    return summary


def show(summary: dict) -> None:
    report = summary["feature_extraction"]
    head = summary["head_training_seconds"]
    print(f"VGG19 weights: {summary['weights']}")
    print(f"{'precision':16s} {'images/s':>9s} {'GFLOP/s':>9s}  accuracy train/val/test")
    for policy, row in report.items():
        acc = "/".join(f"{100 * row['accuracy'][s]:.0f}%" for s in ("train", "val", "test"))
        print(f"{policy:16s} {row['images_per_s']:9.1f} {row['gflop_per_s']:9.0f}  {acc}")
    print(f"mixed_bfloat16 / float32 speed: {summary['bf16_speedup']:.2f}x")
    print(
        f"head training, {head['epochs']} epochs: cached features {head['cached_features']:.2f} s, frozen model "
        f"on images {head['frozen_model_on_images']:.1f} s -> {head['speedup']:.0f}x faster"
    )
    print(f"peak memory {summary['peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    show(run())
