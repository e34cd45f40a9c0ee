"""Run every benchmark in one process family and write results/benchmarks.json. `make bench` calls this.

The machine is shared and noisy: absolute times are indications; ratios measured in the
same process (cached vs cold, ours vs the peer library, bfloat16 vs float32) are the result.
"""

from __future__ import annotations

import platform
import sys

import bench_arithmetic
import bench_backends
import bench_explore
import bench_interpret
import bench_methods
import bench_perf
import bench_pipeline
import bench_vgg19
import bench_zoo

from cnnlib import config
from cnnlib.store.results import package_versions, update_benchmarks


def main() -> None:
    summary = {
        "machine": {"cpus": __import__("os").cpu_count(), "platform": platform.platform()},
        "packages": package_versions(),
    }
    print("== pipeline ==")
    summary["pipeline"] = bench_pipeline.run(with_notebooks="--no-notebooks" not in sys.argv)
    bench_pipeline.show(summary["pipeline"])
    print("\n== VGG19 features ==")
    summary["vgg19"] = bench_vgg19.run()
    bench_vgg19.show(summary["vgg19"])
    print("\n== interpretability ==")
    summary["interpret"] = bench_interpret.run()
    bench_interpret.show(summary["interpret"])
    print("\n== Grad-CAM on keras.applications models ==")
    summary["gradcam_zoo"] = bench_zoo.run()
    bench_zoo.show(summary["gradcam_zoo"])
    print("\n== explorer redraws ==")
    summary["explorer"] = bench_explore.run()
    bench_explore.show(summary["explorer"])
    print("\n== every explanation method, the best custom network and VGG19 ==")
    summary["methods"] = bench_methods.run()
    bench_methods.show(summary["methods"])
    print("\n== feature cache, GFLOP/s against matmul, process parallelism ==")
    summary["perf"] = bench_perf.run(with_parallel="--no-parallel" not in sys.argv)
    bench_perf.show(summary["perf"])
    print("\n== float32 arithmetic: pinned vs the CPU's own kernels ==")
    summary["arithmetic"] = bench_arithmetic.run()
    bench_arithmetic.show(summary["arithmetic"])
    print("\n== the same methods on each Keras backend ==")
    summary["backends"] = bench_backends.run(("tensorflow", "jax", "torch"))
    bench_backends.show(summary["backends"])
    path = config.RESULTS_DIR / "benchmarks.json"
    for key, value in summary.items():  # read-modify-write: keys written elsewhere (e.g. "scale") stay
        update_benchmarks(key, value, path)
    print("\nwrote", path.relative_to(config.REPO_ROOT))


if __name__ == "__main__":
    main()
