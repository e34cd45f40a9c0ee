"""The VGG19 feature pass against this CPU's limit, in one process: images/s and GFLOP/s of the float32
(uncached) pass next to a float32 and a bfloat16 2048^3 matmul. Writes results/benchmarks.json key ``limit``.

    python benchmarks/bench_limit.py          (about 2 minutes on 2 cores)
"""

from __future__ import annotations

import os

from bench_perf import matmul_gflops
from bench_vgg19 import extraction_speed
from timing import update_benchmarks

from cnnlib._tensorflow import tf
from cnnlib.data import images
from cnnlib.models import vgg19


def run(n_images: int = 32) -> dict:
    split = images.load_project_split()
    base, weights = vgg19.load_base({vgg19.ENV_VAR: os.environ.get(vgg19.ENV_VAR, "random")})
    vgg = extraction_speed(base, split.arrays["train"][0][:n_images])  # never the per-image cache
    fp32, bf16 = matmul_gflops(tf.float32), matmul_gflops(tf.bfloat16)
    return {
        "cpus": os.cpu_count(),
        "weights": weights.label,
        "vgg19_float32_images_per_s": vgg["images_per_s"],
        "vgg19_float32_gflop_per_s": vgg["gflop_per_s"],
        "matmul_gflop_per_s": {"float32": fp32, "bfloat16": bf16},
        "vgg19_share_of_float32_matmul": vgg["gflop_per_s"] / fp32,
    }


def show(r: dict) -> None:
    m = r["matmul_gflop_per_s"]
    print(
        f"VGG19 float32 feature pass: {r['vgg19_float32_images_per_s']:.2f} images/s, "
        f"{r['vgg19_float32_gflop_per_s']:.0f} GFLOP/s = {100 * r['vgg19_share_of_float32_matmul']:.0f}% of a float32 "
        f"matmul ({m['float32']:.0f} GFLOP/s; bfloat16 matmul {m['bfloat16']:.0f} GFLOP/s) on {r['cpus']} CPUs"
    )


if __name__ == "__main__":
    result = run()
    show(result)
    update_benchmarks("limit", result)
