"""The main job (`make report`) cold and warm, for one or more git commits, in one run.

    python benchmarks/bench_main_job.py [--refs BEFORE,AFTER] [--phases cold,warm] [--json FILE]

Each commit is cloned into a temporary folder (sharing this checkout's `.venv`), and its
notebooks run one by one through nbconvert, first with an empty cache folder (cold: images
decoded, models trained, VGG19 features computed), then with that cache present (warm);
then its PDF is built. Per notebook: wall seconds and peak resident memory of the process
tree (os.wait4). The machine is shared and noisy, so compare commits measured in the same
run, as ratios. Writes results/benchmarks.json key ``main_job`` unless --json names a file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _timed(cmd: list[str], cwd: Path, env: dict) -> tuple[float, float, float]:
    """Run ``cmd``; return (wall seconds, peak RSS MiB, CPU seconds of its process tree). Raises on failure."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd[-1:])} failed in {cwd}:\n{proc.stderr.read().decode()[-3000:]}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def _notebooks(root: Path) -> list[Path]:
    return sorted(p for p in (root / "notebooks").glob("[0-9][0-9]_*.ipynb") if not p.name.endswith("_explore.ipynb"))


def run_commit(ref: str, phases: tuple[str, ...]) -> dict:
    """Clone ``ref`` and time its main job in each phase (the cache persists across phases)."""
    python = REPO / ".venv" / "bin" / "python"
    with tempfile.TemporaryDirectory(prefix="bench-main-") as tmp:
        root, cache = Path(tmp) / "repo", Path(tmp) / "cache"
        subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(root)], check=True)
        subprocess.run(["git", "checkout", "--quiet", ref], cwd=root, check=True)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
        env = {**os.environ, "CNNLIB_CACHE_DIR": str(cache), "PYTHONPATH": str(root)}
        env.setdefault("CNNLIB_VGG19_WEIGHTS", "random")
        out: dict = {"commit": commit[:12]}
        for phase in phases:
            rows = {}
            for nb in _notebooks(root):
                cmd = [str(python), "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace"]
                cmd += ["--ExecutePreprocessor.timeout=1800", "--ExecutePreprocessor.record_timing=False", str(nb)]
                seconds, peak, cpu = _timed(cmd, root, env)
                rows[nb.name] = {"seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1), "peak_mib": round(peak)}
                print(
                    f"  {ref[:12]:12s} {phase:4s} {nb.name:32s} {seconds:7.1f} s {cpu:7.1f} cpu-s {peak:6.0f} MiB",
                    flush=True,
                )
            pdf_s, _, _ = _timed([str(python), "-m", "cnnlib.report"], root, env)
            total = sum(r["seconds"] for r in rows.values()) + pdf_s
            out[phase] = {
                "notebooks": rows,
                "pdf_seconds": round(pdf_s, 1),
                "total_seconds": round(total, 1),
                "peak_mib": max(r["peak_mib"] for r in rows.values()),
            }
            changed = subprocess.run(
                ["git", "status", "--porcelain", "--", "results", "figures", "data/splits", "report/report.pdf"],
                cwd=root,
                capture_output=True,
                text=True,
            ).stdout.split("\n")
            out[phase]["changed_committed_files"] = [line for line in changed if line.strip()]
            print(f"  {ref[:12]:12s} {phase:4s} total {total:7.1f} s; changed: {out[phase]['changed_committed_files']}")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--refs", default="HEAD", help="comma-separated git refs (before first)")
    parser.add_argument("--phases", default="cold,warm")
    parser.add_argument("--json", help="write the result here instead of results/benchmarks.json")
    args = parser.parse_args(argv)
    phases = tuple(args.phases.split(","))
    result = {"cpus": os.cpu_count(), "commits": {}}
    for ref in args.refs.split(","):
        result["commits"][ref] = run_commit(ref, phases)
    refs = list(result["commits"])
    if len(refs) == 2:
        before, after = (result["commits"][r] for r in refs)
        result["speedup"] = {
            p: round(before[p]["total_seconds"] / after[p]["total_seconds"], 2) for p in phases if p in before
        }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    else:
        sys.path.insert(0, str(REPO / "benchmarks"))
        from timing import update_benchmarks

        update_benchmarks("main_job", result)


if __name__ == "__main__":
    main()
