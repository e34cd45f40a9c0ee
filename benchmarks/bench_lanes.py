"""Is the main job's "idle lane" idle? One training run of notebook 08 alone, then two side by side.

    python benchmarks/bench_lanes.py [--seeds 97,98,99] [--json FILE]

Notebook 08's work for one training seed (every custom variant and a VGG19 head on a fresh random base, as
``experiments.run_split`` does) is what a second lane could take over while 08 runs. This trains it once alone,
then two other seeds at the same time, each in its own process under the project's pinned arithmetic, with an
empty model cache (a temporary ``CNNLIB_CACHE_DIR`` holding only the decoded images) so every run really trains.
It prints wall seconds, CPU seconds and utilisation (CPU-seconds / (cores x wall)) of each phase and the ratio
``2 x alone / together``: how much faster two runs finish side by side than one after the other, the most a
schedule that fills a second lane with such work can gain. Writes results/benchmarks.json key ``lanes``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ONE_RUN = """
import sys
from cnnlib import config
from cnnlib.run import session
from cnnlib.stats import experiments
s = session.start(config.classes_setting(), config.SEED, config.profile_name())
experiments.run_split(s.split, config.SEED, [int(sys.argv[1])], s.settings, len(s.classes))
"""


def _phase(seeds: list[int], env: dict) -> dict:
    """Train one run per seed, all at once; wall and CPU seconds of the processes together."""
    start = time.perf_counter()
    before = os.times()
    processes = [subprocess.Popen([sys.executable, "-c", ONE_RUN, str(s)], cwd=REPO, env=env) for s in seeds]
    if any(p.wait() for p in processes):
        raise RuntimeError(f"a training run failed (seeds {seeds})")
    wall, after = time.perf_counter() - start, os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    cores = os.cpu_count() or 1
    return {"runs": len(seeds), "seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
            "cpu_utilisation": round(cpu / (cores * wall), 2)}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="97,98,99", help="three training seeds no notebook uses")
    parser.add_argument("--json", help="write the result here instead of results/benchmarks.json")
    args = parser.parse_args(argv)
    alone_seed, *together_seeds = [int(s) for s in args.seeds.split(",")]
    sys.path.insert(0, str(REPO))
    from cnnlib import config

    with tempfile.TemporaryDirectory(prefix="bench-lanes-") as cache:
        for decoded in config.cache_dir().glob("images_*.npz"):  # decoding is not what is measured
            shutil.copy(decoded, cache)
        env = {**os.environ, "CNNLIB_CACHE_DIR": cache}
        env.setdefault("CNNLIB_VGG19_WEIGHTS", "random")
        alone = _phase([alone_seed], env)
        print(f"one run alone:       {alone}", flush=True)
        together = _phase(together_seeds, env)
        print(f"two runs together:   {together}", flush=True)
    ratio = round(2 * alone["seconds"] / together["seconds"], 2)
    print(f"two side by side finish {ratio}x as fast as one after the other", flush=True)
    result = {
        "what": "notebook 08's work for one training seed (6 custom variants + VGG19 head on a new random base), "
        "alone and two at once, empty model cache",
        "cpus": os.cpu_count(),
        "alone": alone,
        "together": together,
        "throughput_ratio": ratio,
    }
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_main_job import publish

    publish(result, "lanes", args.json)


if __name__ == "__main__":
    main()
