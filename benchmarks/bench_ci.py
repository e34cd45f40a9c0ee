"""CI (`bash .ci/run` on a clean clone) for one or more git commits, one after the other, in one run.

    python benchmarks/bench_ci.py [--refs BEFORE,AFTER] [--json FILE] [--logs DIR]

Each commit is cloned into an empty temporary folder with this checkout's ``../shared`` linked beside it,
as CI has it, and runs its own ``.ci/run`` with ``CI=true`` and none of this shell's project settings
(no cache folder, dataset path or weights setting: the script sets its own). So each run installs its
virtual environment (pip's cache is warm), lints, runs ``make test`` from an empty cache, builds the PDF and
checks that nothing committed changed. Reports wall seconds, CPU seconds and the peak resident memory of
the process tree; ``--logs`` keeps each run's output with the time of every line. The machine is shared
and noisy: compare commits measured in the same run, as ratios. Writes results/benchmarks.json key ``ci``
unless --json names a file.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_main_job import REPO, _timed, publish  # noqa: E402

PROJECT_SETTINGS = ("CNNLIB_", "CALTECH101_", "PYTHONPATH", "VIRTUAL_ENV")


def run_ci(ref: str, logs: Path | None) -> dict:
    """Clone ``ref`` beside a link to ``../shared`` and time its ``.ci/run``."""
    with tempfile.TemporaryDirectory(prefix="bench-ci-") as tmp:
        root = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(root)], check=True)
        subprocess.run(["git", "checkout", "--quiet", ref], cwd=root, check=True)
        (Path(tmp) / "shared").symlink_to((REPO.parent / "shared").resolve())
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout
        env = {k: v for k, v in os.environ.items() if not k.startswith(PROJECT_SETTINGS)}
        env["CI"] = "true"
        log = logs / f"ci_{commit[:12]}.log" if logs else None
        wall, peak, cpu = _timed(["bash", ".ci/run"], root, env, log)
    out = {"commit": commit[:12], "seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "peak_mib": round(peak)}
    print(f"  {ref[:12]:12s} .ci/run {wall:7.1f} s ({wall / 60:.1f} min); {out}", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--refs", default="HEAD", help="comma-separated git refs (before first)")
    parser.add_argument("--json", help="write the result here instead of results/benchmarks.json")
    parser.add_argument("--logs", type=Path, help="keep each run's timed output in this folder")
    args = parser.parse_args(argv)
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
    result = {"cpus": os.cpu_count(), "commits": {ref: run_ci(ref, args.logs) for ref in args.refs.split(",")}}
    refs = list(result["commits"])
    if len(refs) == 2:
        before, after = (result["commits"][r] for r in refs)
        result["speedup"] = round(before["seconds"] / after["seconds"], 2)
    publish(result, "ci", args.json)


if __name__ == "__main__":
    main()
