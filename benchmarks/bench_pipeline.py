"""Benchmark of the whole pipeline: image decoding, custom-network training, and every notebook cold and warm.

Prints tables and returns a dict (written by benchmarks/run_all.py to results/benchmarks.json).
The notebooks run twice through nbconvert: once with an empty cache folder (cold: images
decoded, models trained, VGG19 features computed) and once with that cache present (warm).
Peak memory is the largest resident set of a notebook's process tree (os.wait4).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import median_seconds  # noqa: E402

from cnnlib import config
from cnnlib.data import images
from cnnlib.models import architectures, training  # first: imports TensorFlow quietly


def image_loading(split) -> dict:
    """Decoding + resizing every manifest image, cold (from JPEG) and from the decoded-array cache."""
    n = len(split.manifest)
    cold = median_seconds(lambda: images.load_split(split.manifest, split.root, cache=False))
    images.load_split(split.manifest, split.root)  # make sure the cache exists
    warm = median_seconds(lambda: images.load_split(split.manifest, split.root))
    return {"images": n, "cold_images_per_s": n / cold, "cached_images_per_s": n / warm, "cache_speedup": cold / warm}


def custom_training(split) -> dict:
    """Seconds per epoch and per early-stopped training for every variant (one run each, not cached)."""
    settings = config.train_settings("full")
    out, models = {}, {}
    for variant, (_, source) in architectures.VARIANTS.items():
        start = time.perf_counter()
        models[variant], record = training.train_variant(
            variant, split.arrays, settings, source_model=models.get(source), cache=False
        )
        seconds = time.perf_counter() - start
        out[variant] = {
            "seconds": seconds,
            "epochs": record["epochs_run"],
            "seconds_per_epoch": seconds / record["epochs_run"],
        }
    return out


def _run_notebook(path: Path, env: dict) -> tuple[float, float]:
    """Execute one notebook (output to a temporary file); return (wall seconds, peak RSS MiB)."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [
            sys.executable,
            "-m",
            "jupyter",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--output-dir",
            out,
            "--ExecutePreprocessor.timeout=1800",
            str(path),
        ]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"{path.name} failed: {proc.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def notebooks() -> dict:
    """Every notebook's wall time and peak memory, cold (empty cache) then warm (cache present)."""
    paths = sorted((config.REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    result = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "CNNLIB_CACHE_DIR": cache}
        env.setdefault("CNNLIB_VGG19_WEIGHTS", "random")
        for phase in ("cold", "warm"):
            rows = {p.name: dict(zip(("seconds", "peak_mib"), _run_notebook(p, env))) for p in paths}
            result[phase] = {
                "notebooks": rows,
                "total_seconds": sum(r["seconds"] for r in rows.values()),
                "peak_mib": max(r["peak_mib"] for r in rows.values()),
            }
    return result


def run(with_notebooks: bool = True) -> dict:
    split = images.load_project_split()
    summary = {"image_loading": image_loading(split), "custom_training": custom_training(split)}
    if with_notebooks:
        summary["notebooks"] = notebooks()
    return summary


def show(summary: dict) -> None:
    load = summary["image_loading"]
    print(
        f"image decoding + resize ({load['images']} images): {load['cold_images_per_s']:.0f} images/s cold, "
        f"{load['cached_images_per_s']:.0f} images/s from the cache ({load['cache_speedup']:.0f}x)"
    )
    print(f"{'variant':16s} {'epochs':>6s} {'s/epoch':>8s} {'s total':>8s}")
    for variant, row in summary["custom_training"].items():
        print(f"{variant:16s} {row['epochs']:6d} {row['seconds_per_epoch']:8.2f} {row['seconds']:8.1f}")
    if "notebooks" in summary:
        cold, warm = summary["notebooks"]["cold"], summary["notebooks"]["warm"]
        print(f"{'notebook':36s} {'cold s':>7s} {'warm s':>7s} {'peak MiB':>9s}")
        for name in cold["notebooks"]:
            c, w = cold["notebooks"][name], warm["notebooks"][name]
            print(f"{name:36s} {c['seconds']:7.1f} {w['seconds']:7.1f} {max(c['peak_mib'], w['peak_mib']):9.0f}")
        print(f"{'total':36s} {cold['total_seconds']:7.1f} {warm['total_seconds']:7.1f} {cold['peak_mib']:9.0f}")


if __name__ == "__main__":
    show(run(with_notebooks="--no-notebooks" not in sys.argv))
