"""The main job (`make report`) cold and warm, for one or more git commits, in one run.

    python benchmarks/bench_main_job.py [--refs BEFORE,AFTER] [--phases cold,warm] [--backend jax] [--json FILE]
    python benchmarks/bench_main_job.py --from-device DIR     (a GPU run of benchmarks/gpu_main_job.sh)

Each commit is cloned into a temporary folder (sharing this checkout's `.venv`) and runs its own
`make report` commands: its notebooks (`python -m cnnlib.run.notebooks` where the commit has it, else one
nbconvert call for all notebooks in order, as its Makefile did), then its PDF. First with an empty cache folder
(cold: images decoded, models trained, VGG19 features computed), then with that cache present (warm).
Peak memory is the largest sum of the resident memory of the job's whole process tree (sampled every
0.2 s from /proc, so notebooks running at once add up). The machine is shared and noisy, so compare
commits measured in the same run, as ratios. After each phase the clone's committed outputs are checked
for changes. Writes results/benchmarks.json key ``main_job`` unless --json names a file.

With ``--backend jax`` (or ``torch``) the clone runs on that Keras backend (its cache keys differ, so cold is cold),
and each phase is also compared with the commit's committed outputs, which are TensorFlow's
(``cnnlib.run.reproduction``: files identical, within tolerance, beyond), and the networks' test accuracies over
training seeds are set beside TensorFlow's (``seed_agreement``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGE_MIB = os.sysconf("SC_PAGE_SIZE") / 2**20


def _tree_rss_mib(root_pid: int) -> float:
    """Resident memory (MiB) of ``root_pid`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/statm") as f:
                rss[int(entry)] = int(f.read().split()[1]) * PAGE_MIB
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    total, stack = 0.0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0.0)
        stack += children.get(pid, [])
    return total


def _timed(cmd: list[str], cwd: Path, env: dict, log: Path | None = None) -> tuple[float, float, float]:
    """Run ``cmd``; return (wall seconds, peak MiB of its process tree, CPU seconds). Raises on failure.

    With ``log``, every output line is written there as it arrives, prefixed with the seconds since the start.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak, done = [0.0], threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], _tree_rss_mib(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lines = []
    with open(log or os.devnull, "w") as sink:
        for line in proc.stdout:
            lines.append(line)
            sink.write(f"[{time.perf_counter() - start:7.1f} s] {line}")
            sink.flush()
    output = "".join(lines)
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd[-2:])} failed in {cwd}:\n{output[-3000:]}")
    for line in output.splitlines():  # the stage runner's per-notebook times
        if ".ipynb: " in line:
            print("      " + line, flush=True)
    return wall, peak[0], usage.ru_utime + usage.ru_stime


def _notebook_commands(root: Path, python: str) -> list[list[str]]:
    """The commit's own `make notebooks`: the stage runner where it exists (``cnnlib.run.notebooks`` since the package
    redesign, ``cnnlib.notebooks`` before), else one nbconvert call for all."""
    for module in ("cnnlib.run.notebooks", "cnnlib.notebooks"):
        if (root / (module.replace(".", "/") + ".py")).is_file():
            return [[python, "-m", module]]
    paths = sorted(p for p in (root / "notebooks").glob("[0-9][0-9]_*.ipynb") if not p.stem.endswith("_explore"))
    nbconvert = [python, "-m", "jupyter", "nbconvert", "--to", "notebook", "--inplace"]
    run = ["--execute", "--ExecutePreprocessor.timeout=1800", "--ExecutePreprocessor.record_timing=False"]
    return [nbconvert + run + [str(p) for p in paths]] + [
        nbconvert + ["--CoalesceStreamsPreprocessor.enabled=True"] + [str(p) for p in paths]
    ]


def seed_agreement(reference: dict, candidate: dict) -> dict:
    """Per network, test accuracy over training seeds on two backends (results/statistics.json "seed_runs"): both
    means and standard deviations, the difference of means with its Welch 95% interval, and how many seeds' networks
    make the same best-by-validation pick."""
    from scipy import stats

    def by_model(doc):
        runs: dict[str, list[float]] = {}
        for run in doc["seed_runs"]:
            runs.setdefault(run["model"], []).append(run["test"])
        return runs

    ref, cand = by_model(reference), by_model(candidate)
    out = {}
    for model in ref:
        a, b = ref[model], cand[model]
        test = stats.ttest_ind(b, a, equal_var=False)
        ci = test.confidence_interval(0.95)
        out[model] = {
            "reference_mean": round(float(sum(a) / len(a)), 4),
            "reference_sd": round(float(stats.tstd(a)), 4),
            "candidate_mean": round(float(sum(b) / len(b)), 4),
            "candidate_sd": round(float(stats.tstd(b)), 4),
            "difference": round(float(sum(b) / len(b) - sum(a) / len(a)), 4),
            "welch_ci95": [round(float(ci.low), 4), round(float(ci.high), 4)],
            "seeds": len(a),
        }
    picks = [
        reference["best_by_val_per_seed"][k]["pick"] == candidate["best_by_val_per_seed"][k]["pick"]
        for k in reference["best_by_val_per_seed"]
    ]
    conclusions = {}
    # Rows pair by position: the first compares the best custom network (by validation) with VGG19, and the best
    # can differ between the runs (each side then names its own pair).
    for ref_row, cand_row in zip(reference["comparisons"], candidate["comparisons"], strict=True):
        names = [f"{row['A']} - {row['B']}" for row in (ref_row, cand_row)]
        conclusions[names[0] if names[0] == names[1] else " / ".join(names)] = {
            side: {
                "comparison": f"{row['A']} - {row['B']}",
                "difference": row["difference"],
                "ci95": [round(v, 4) for v in row["ci"]],
                "p_holm": row["p_holm"] if row["p_holm"] is not None else row["p"],
                "rejected": bool(row["reject_holm"]) if row["p_holm"] is not None else row["p"] < 0.05,
                "seeds_x_images": doc["bootstrap"][f"{row['A']} - {row['B']}"]["seeds x images"],
            }
            for side, row, doc in (("reference", ref_row, reference), ("candidate", cand_row, candidate))
        }
    return {
        "test_accuracy_over_seeds": out,
        "same_best_pick": f"{sum(picks)} of {len(picks)} seeds",
        "comparisons": conclusions,
    }


def against_committed(root: Path) -> dict:
    """The clone's outputs after a run against its commit's (``cnnlib.run.reproduction``), and the seed agreement."""
    sys.path.insert(0, str(REPO))
    from cnnlib.run import reproduction

    result = reproduction.compare(reproduction.GitRevision("HEAD", root), reproduction.Folder(root))
    beyond = sorted({d.file for d in result.failures})
    committed = subprocess.run(
        ["git", "show", "HEAD:results/statistics.json"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    return {
        "files": result.files,
        "identical": result.identical,
        "within_tolerance": len(result.differences) - len(result.failures),
        "differences_beyond_tolerance": len(result.failures),
        "files_beyond_tolerance": beyond,
        **seed_agreement(json.loads(committed), json.loads((root / "results" / "statistics.json").read_text())),
    }


def run_commit(ref: str, phases: tuple[str, ...], keras_backend: str = "tensorflow", keep: Path | None = None) -> dict:
    """Clone ``ref`` and time its main job in each phase (the cache persists across phases) on ``keras_backend``;
    with ``keep``, the clone's outputs (results, figures, notebooks, report) are copied there at the end."""
    python = str(REPO / ".venv" / "bin" / "python")
    with tempfile.TemporaryDirectory(prefix="bench-main-") as tmp:
        root, cache = Path(tmp) / "repo", Path(tmp) / "cache"
        subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(root)], check=True)
        subprocess.run(["git", "checkout", "--quiet", ref], cwd=root, check=True)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
        env = {**os.environ, "CNNLIB_CACHE_DIR": str(cache), "PYTHONPATH": str(root), "KERAS_BACKEND": keras_backend}
        env.setdefault("CNNLIB_VGG19_WEIGHTS", "random")
        out: dict = {"commit": commit[:12], "backend": keras_backend}
        for phase in phases:
            wall = cpu = peak = 0.0
            pdf = "cnnlib.report.pdf" if (root / "cnnlib" / "report" / "pdf.py").is_file() else "cnnlib.report"
            for cmd in _notebook_commands(root, python) + [[python, "-m", pdf]]:
                w, p, c = _timed(cmd, root, env)
                wall, cpu, peak = wall + w, cpu + c, max(peak, p)
                name = (
                    "nbconvert " + ("--execute" if "--execute" in cmd else "coalesce") if "jupyter" in cmd else cmd[2]
                )
                print(f"  {ref[:12]:12s} {phase:4s} {name:36s} {w:7.1f} s {c:7.1f} cpu-s {p:6.0f} MiB", flush=True)
            changed = subprocess.run(
                ["git", "status", "--porcelain", "--", "results", "figures", "data/splits", "notebooks", "report"],
                cwd=root,
                capture_output=True,
                text=True,
            ).stdout.split("\n")
            out[phase] = {
                "seconds": round(wall, 1),
                "cpu_seconds": round(cpu, 1),
                "peak_mib": round(peak),
                "cpu_utilisation": round(cpu / ((os.cpu_count() or 1) * wall), 2),  # CPU-seconds / (cores x wall)
                "changed_committed_files": [line for line in changed if line.strip()],
            }
            if keras_backend != "tensorflow":
                out[phase]["against_committed_tensorflow_outputs"] = against_committed(root)
            print(f"  {ref[:12]:12s} {phase:4s} make report {wall:7.1f} s; {out[phase]}", flush=True)
        for folder in ("results", "figures", "notebooks", "report") if keep else ():
            shutil.copytree(root / folder, keep / ref / folder, dirs_exist_ok=True)
    return out


def from_device(folder: Path, ref: str = "HEAD") -> dict:
    """Record a run of ``benchmarks/gpu_main_job.sh`` whose files came back to ``folder`` (log.txt, outputs.tar.gz):
    the machine, each notebook's time, and its outputs against ``ref``'s committed ones, with the PDF built here from
    them (``cnnlib.report.pdf``: results and figures only), as ``run_commit`` records a run on this machine."""
    import re

    log = (folder / "log.txt").read_text()
    lines = log.splitlines()
    marker = next((i for i, line in enumerate(lines) if line.startswith("DEVICE ")), None)
    ended = re.search(r"^NOTEBOOKS exit (\d+), (\d+) s$", log, re.M)
    if marker is None or ended is None:
        raise SystemExit(f"{folder / 'log.txt'} has no DEVICE line or no NOTEBOOKS line: the run did not finish")
    if int(ended[1]) != 0:
        raise SystemExit(f"the notebooks failed on the device (exit {ended[1]}); see {folder / 'log.txt'}")
    notebooks = {
        m[1]: {"seconds": float(m[2]), "peak_mib": float(m[3])}
        for m in re.finditer(r"^(\S+\.ipynb): (\d+) s, peak (\d+) MiB$", log, re.M)
    }
    python = str(REPO / ".venv" / "bin" / "python")
    with tempfile.TemporaryDirectory(prefix="bench-device-") as tmp:
        root = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(root)], check=True)
        subprocess.run(["git", "checkout", "--quiet", ref], cwd=root, check=True)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
        subprocess.run(["tar", "-xzf", str((folder / "outputs.tar.gz").resolve())], cwd=root, check=True)
        env = {**os.environ, "PYTHONPATH": str(root), "CNNLIB_VGG19_WEIGHTS": "random"}
        subprocess.run([python, "-m", "cnnlib.report.pdf"], cwd=root, env=env, check=True)
        warm = re.search(r"^WARM exit (\d+), (\d+) s$", log, re.M)
        same = re.search(r"^WARM files not the same bytes as cold: (\d+)$", log, re.M)
        return {
            "commit": commit[:12],
            **(
                {"warm": {"notebooks_seconds": float(warm[2]), "files_not_the_same_bytes_as_cold": int(same[1])}}
                if warm and same and int(warm[1]) == 0
                else {}
            ),
            "machine": {"gpu": lines[marker - 1] if marker else "", **json.loads(lines[marker][len("DEVICE ") :])},
            "cold": {
                "notebooks_seconds": float(ended[2]),
                "notebooks": notebooks,
                "pdf": "built on this machine from the device's results and figures",
                "against_committed_tensorflow_outputs": against_committed(root),
            },
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--refs", default="HEAD", help="comma-separated git refs (before first)")
    parser.add_argument("--phases", default="cold,warm")
    parser.add_argument("--json", help="write the result here instead of results/benchmarks.json")
    parser.add_argument("--key", default="main_job", help="the key in results/benchmarks.json")
    parser.add_argument("--what", default="", help="one line saying what the commits are")
    parser.add_argument("--backend", default="tensorflow", help="KERAS_BACKEND for the clone (default tensorflow)")
    parser.add_argument("--keep", type=Path, help="copy each clone's outputs to KEEP/<ref>/ at the end")
    parser.add_argument(
        "--seeds-from-kept",
        type=Path,
        metavar="DIR",
        help="only recompute the seed agreement of a kept run (DIR/<ref>/results) against each ref's committed "
        "results, into the key's stored record (no run)",
    )
    parser.add_argument(
        "--from-device",
        type=Path,
        metavar="DIR",
        help="record the files a run of benchmarks/gpu_main_job.sh brought back (DIR/log.txt, DIR/outputs.tar.gz) "
        "against --refs's committed outputs, under --key (default main_job_gpu), instead of running here",
    )
    args = parser.parse_args(argv)
    if args.from_device:
        record = from_device(args.from_device, args.refs)
        publish({"what": args.what, **record}, "main_job_gpu" if args.key == "main_job" else args.key, args.json)
        return
    phases = tuple(args.phases.split(","))
    if args.seeds_from_kept:
        from timing import update_benchmarks

        stored = json.loads((REPO / "results" / "benchmarks.json").read_text())[args.key]
        for ref, record in stored["commits"].items():
            committed = subprocess.run(
                ["git", "show", f"{ref}:results/statistics.json"], cwd=REPO, capture_output=True, text=True, check=True
            ).stdout
            kept = json.loads((args.seeds_from_kept / ref / "results" / "statistics.json").read_text())
            for phase in phases:
                record[phase]["against_committed_tensorflow_outputs"].update(
                    seed_agreement(json.loads(committed), kept)
                )
        update_benchmarks(args.key, stored)
        return
    result = {"cpus": os.cpu_count(), "what": args.what, "commits": {}}
    for ref in args.refs.split(","):
        result["commits"][ref] = run_commit(ref, phases, args.backend, args.keep)
    refs = list(result["commits"])
    if len(refs) == 2:
        before, after = (result["commits"][r] for r in refs)
        result["speedup"] = {p: round(before[p]["seconds"] / after[p]["seconds"], 2) for p in phases if p in before}
    publish(result, args.key, args.json)


def publish(result: dict, key: str, json_path: str | None) -> None:
    """Print ``result``; write it to ``json_path``, or else under ``key`` in results/benchmarks.json."""
    text = json.dumps(result, indent=2)
    print(text)
    if json_path:
        Path(json_path).write_text(text + "\n")
    else:
        sys.path.insert(0, str(REPO / "benchmarks"))
        from timing import update_benchmarks

        update_benchmarks(key, result)


if __name__ == "__main__":
    main()
