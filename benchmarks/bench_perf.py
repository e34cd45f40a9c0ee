"""Benchmark for issue 17: per-image feature cache, VGG19 GFLOP/s against this CPU's matmul, process parallelism.

Alone: `python benchmarks/bench_perf.py` (about 4 minutes; --no-parallel skips the subprocess part,
--parallel-only runs just that part and adds it to the existing entry).
Writes results/benchmarks.json key "perf" only (read-modify-write). Every ratio compares runs made in
this process (or, for parallelism, launched from it back to back); the machine is shared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from timing import median_seconds  # noqa: E402

from cnnlib import config  # first: imports TensorFlow quietly
from cnnlib.data import dataset, images
from cnnlib.models import vgg19
from cnnlib.store import results

HERE = Path(__file__).resolve().parent


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def feature_cache(split: images.ProjectSplit, other: images.ProjectSplit) -> dict:
    """Per-split path (baseline) vs the per-image cache: cold, warm, and a second split drawn with another seed."""
    base, weights = vgg19.load_base({vgg19.ENV_VAR: os.environ.get(vgg19.ENV_VAR, "random")})
    vgg19.extract_features(base, split.arrays["val"][0][:16])  # trace once, outside the timings
    reference, baseline = timed(lambda: {s: vgg19.extract_features(base, x) for s, (x, _) in split.arrays.items()})
    before = os.environ.get("CNNLIB_CACHE_DIR")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["CNNLIB_CACHE_DIR"] = cache  # a cold, private cache for this comparison
        try:
            cold, cold_s = timed(lambda: vgg19.cached_features(base, weights, split.arrays))
            warm_s = median_seconds(lambda: vgg19.cached_features(base, weights, split.arrays))
            _, other_s = timed(lambda: vgg19.cached_features(base, weights, other.arrays))
        finally:
            os.environ.pop("CNNLIB_CACHE_DIR")
            if before is not None:
                os.environ["CNNLIB_CACHE_DIR"] = before
    n = sum(len(y) for _, y in split.arrays.values())
    seen = set(split.manifest["sha256"])
    new = int(sum(1 for d in other.manifest["sha256"] if d not in seen))
    identical = all(np.array_equal(reference[s], cold[s][0]) for s in reference)
    return {
        "images": n,
        "per_split_path_s": baseline,
        "cache_cold_s": cold_s,
        "cache_warm_s": warm_s,
        "cold_over_baseline": cold_s / baseline,
        "baseline_over_warm": baseline / warm_s,
        "second_split": {
            "images": int(len(other.manifest)),
            "not_seen_before": new,
            "seconds": other_s,
            "baseline_over_this": baseline / other_s,
        },
        "bit_identical_to_per_split_path": identical,
        "vgg19_gflop_per_s": n * vgg19.GFLOP_PER_IMAGE / baseline,
    }


def matmul_gflops(dtype: tf.DType, n: int = 2048, repeats: int = 5) -> float:
    a = tf.random.stateless_normal((n, n), seed=(1, 2), dtype=tf.float32)
    a = tf.cast(a, dtype)
    step = tf.function(lambda x: tf.matmul(x, x))
    seconds = median_seconds(lambda: step(a).numpy(), repeats, warmup=True)
    return 2 * n**3 / seconds / 1e9


def parallel(variant: str = "arch3", seeds: tuple[int, int] = (42, 43)) -> dict:
    """Two trainings: one process with 2 threads (serial) vs two processes with 1 thread each (at once)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(config.REPO_ROOT)}
    worker = [sys.executable, str(HERE / "parallel_worker.py")]
    lines = lambda out: [json.loads(line) for line in out.splitlines() if line.startswith("{")]  # noqa: E731
    start = time.perf_counter()
    serial = lines(
        subprocess.run(
            worker + ["2", variant, ",".join(map(str, seeds))], env=env, check=True, capture_output=True, text=True
        ).stdout
    )
    serial_s = time.perf_counter() - start
    start = time.perf_counter()
    procs = [
        subprocess.Popen(worker + ["1", variant, str(s)], env=env, stdout=subprocess.PIPE, text=True) for s in seeds
    ]
    split_runs = [row for p in procs for row in lines(p.communicate()[0])]
    parallel_s = time.perf_counter() - start
    epochs = lambda rows: sum(r["epochs"] for r in rows)  # noqa: E731
    return {
        "variant": variant,
        "seeds": list(seeds),
        "one_process_two_threads": {"seconds": serial_s, "epochs": epochs(serial), "runs": serial},
        "two_processes_one_thread": {"seconds": parallel_s, "epochs": epochs(split_runs), "runs": split_runs},
        "serial_over_parallel_wall": serial_s / parallel_s,
        "epochs_per_s_ratio_parallel_over_serial": (epochs(split_runs) / parallel_s) / (epochs(serial) / serial_s),
        "bit_identical": [r["weights_sha256"] for r in serial] == [r["weights_sha256"] for r in split_runs],
    }


def run(with_parallel: bool = True) -> dict:
    split = images.load_project_split()
    root = split.root
    manifest = dataset.read_manifest(config.SPLITS_DIR / "split_seed1.csv", config.CLASSES, config.SPLIT_SIZES)
    other = images.ProjectSplit(root, manifest, "", images.load_split(manifest, root))
    summary = {"feature_cache": feature_cache(split, other)}
    fp32 = matmul_gflops(tf.float32)
    summary["matmul_gflop_per_s"] = {"float32": fp32, "bfloat16": matmul_gflops(tf.bfloat16)}
    summary["vgg19_share_of_fp32_matmul"] = summary["feature_cache"]["vgg19_gflop_per_s"] / fp32
    summary["cpu_has_avx512_bf16"] = "avx512_bf16" in Path("/proc/cpuinfo").read_text()
    if with_parallel:
        summary["parallel"] = parallel()
    summary["cpu_count"] = os.cpu_count()
    return summary


def show(summary: dict) -> None:
    f = summary["feature_cache"]
    print(
        f"VGG19 features, {f['images']} images: per-split path {f['per_split_path_s']:.1f} s; per-image cache cold "
        f"{f['cache_cold_s']:.1f} s ({f['cold_over_baseline']:.2f}x the baseline), warm {f['cache_warm_s']:.2f} s "
        f"({f['baseline_over_warm']:.0f}x faster); bit-identical: {f['bit_identical_to_per_split_path']}"
    )
    o = f["second_split"]
    print(
        f"second split (seed 1): {o['not_seen_before']} of {o['images']} images new, {o['seconds']:.1f} s "
        f"({o['baseline_over_this']:.1f}x faster than the per-split path)"
    )
    m = summary["matmul_gflop_per_s"]
    print(
        f"VGG19 pass {f['vgg19_gflop_per_s']:.0f} GFLOP/s = {100 * summary['vgg19_share_of_fp32_matmul']:.0f}% of a "
        f"float32 matmul ({m['float32']:.0f} GFLOP/s); bfloat16 matmul {m['bfloat16']:.0f} GFLOP/s"
    )
    if "parallel" in summary:
        p = summary["parallel"]
        print(
            f"{p['variant']} x 2 seeds: 1 process x 2 threads {p['one_process_two_threads']['seconds']:.1f} s, "
            f"2 processes x 1 thread {p['two_processes_one_thread']['seconds']:.1f} s (epochs/s ratio "
            f"{p['epochs_per_s_ratio_parallel_over_serial']:.2f}); bit-identical: {p['bit_identical']}"
        )


if __name__ == "__main__":
    if "--parallel-only" in sys.argv:  # add the parallelism part to an existing "perf" entry
        path = config.RESULTS_DIR / "benchmarks.json"
        result = {**json.loads(path.read_text()).get("perf", {}), "parallel": parallel()}
    else:
        result = run(with_parallel="--no-parallel" not in sys.argv)
    show(result)
    results.update_benchmarks("perf", result)
    print("wrote results/benchmarks.json (key perf)")
