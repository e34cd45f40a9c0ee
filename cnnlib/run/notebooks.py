"""Execute the numbered notebooks in place, in dependency stages, several at once where they are independent.

For another class list (``CNNLIB_CLASSES``) the notebooks are copied to ``<output dir>/<label>/notebooks/`` and
executed there, beside that run's results and figures: the committed notebooks are never rewritten.

    python -m cnnlib.run.notebooks [--jobs N] [notebook ...]      (``make notebooks`` runs this)

Notebooks 01-03 feed every later one (the split; the trained custom networks and ``custom_summary``; the
VGG19 features and head), so each runs alone and in order. The later notebooks only read those results and
the cache, so up to ``--jobs`` of them run at once, longest first. Each is executed in a child process by
nbconvert's own exporter, as ``jupyter nbconvert --execute --inplace`` would (no timing metadata), and its
stream chunks are merged, so the files are the same bytes whatever ``--jobs`` is: every kernel inherits the pinned
arithmetic (``cnnlib.arithmetic``: the same kernels and thread count in every process), so its float32 sums are the
same (``make compare``, which CI runs after re-executing the notebooks, guards this). The explorer
(``notebooks/explore.ipynb``, unnumbered) is interactive and never executed here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cnnlib import config

NOTEBOOKS_DIR = config.REPO_ROOT / "notebooks"
SEQUENTIAL = ("01", "02", "03")  # notebooks whose outputs every later notebook reads
# Longest first, so the slowest notebook starts at once (measured cold on 2 cores; unknown ones go last).
LONGEST_FIRST = ("08", "09", "10", "05", "04", "07", "06")


def numbered_notebooks(folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """Every ``NN_*.ipynb`` (the analysis; the explorer, ``explore.ipynb``, has no number), in number order."""
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


def stages(paths: Sequence[Path]) -> list[list[Path]]:
    """[[01], [02], [03], [the rest, longest first]]: each stage starts when the one before has finished."""
    early = [[p] for p in sorted(paths) if p.name[:2] in SEQUENTIAL]
    rest = sorted(
        (p for p in paths if p.name[:2] not in SEQUENTIAL),
        key=lambda p: (LONGEST_FIRST.index(p.name[:2]) if p.name[:2] in LONGEST_FIRST else len(LONGEST_FIRST), p),
    )
    return early + ([rest] if rest else [])


def placed_for_run(paths: Sequence[Path], run_root: Path | None) -> list[Path]:
    """The notebook files to execute: ``paths`` themselves for the reference classes (``run_root`` None);
    for another class list, fresh copies in ``<run_root>/notebooks/`` (replacing an earlier run's), so the
    committed notebooks never show another run's outputs and ``git status`` stays clean."""
    if run_root is None:
        return list(paths)
    folder = Path(run_root) / "notebooks"
    folder.mkdir(parents=True, exist_ok=True)
    placed = []
    for path in paths:
        shutil.copyfile(path, folder / path.name)
        placed.append(folder / path.name)
    return placed


def _run_root() -> Path | None:
    """``<output dir>/<label>`` when ``CNNLIB_CLASSES`` names another class list than the reference's, else None."""
    from cnnlib.data import locate
    from cnnlib.store import artifacts

    outputs = artifacts.outputs_for(locate.resolve_classes(config.classes_setting()))
    return outputs.root if outputs.label else None


def _execute_here(path: Path, timeout_s: int) -> None:
    """Execute ``path`` in place in this process, as ``jupyter nbconvert --to notebook --execute --inplace``
    did (same exporter, same writer), then merge its stream chunks: how printed lines are split into
    chunks depends on timing, so merging makes equal outputs give equal files (nbconvert coalesces only
    before executing). One process instead of two saves an interpreter and nbconvert start per notebook."""
    from nbconvert.exporters import NotebookExporter
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor
    from traitlets.config import Config

    settings = Config()
    settings.ExecutePreprocessor.enabled = True
    settings.ExecutePreprocessor.timeout = timeout_s
    settings.ExecutePreprocessor.record_timing = False
    exporter = NotebookExporter(config=settings)
    exporter.register_preprocessor(CoalesceStreamsPreprocessor(enabled=True), enabled=True)  # after executing
    text, _ = exporter.from_filename(str(path), resources={"metadata": {"path": str(path.parent)}})
    path.write_text(text, encoding="utf-8")


@dataclass(frozen=True)
class Executed:
    """One executed notebook: wall seconds and the peak resident memory of its process tree (MiB; the
    kernel's, the largest process of the tree: ``wait4`` reports the maximum over the process and every
    descendant it reaped)."""

    seconds: float
    peak_mib: float


def execute(path: Path, timeout_s: int = 3600) -> Executed:
    """Execute one notebook in place (in a child process) with merged stream chunks. Raises ``RuntimeError``
    on failure, naming the notebook and ending with its error."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "cnnlib.run.notebooks", "--execute-one", str(path), "--timeout", str(timeout_s)]
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        if process.returncode != 0:
            stderr.seek(0)
            raise RuntimeError(f"{path.name} failed:\n{stderr.read().decode(errors='replace')[-4000:]}")
    return Executed(time.perf_counter() - start, usage.ru_maxrss / 1024)  # Linux: ru_maxrss in KiB


def run(paths: Sequence[Path], jobs: int = 2) -> dict[str, Executed]:
    """Execute ``paths`` stage by stage, up to ``jobs`` at once within a stage: {notebook name: ``Executed``}."""
    done: dict[str, Executed] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for stage in stages(paths):
            for path, executed in zip(stage, pool.map(execute, stage)):
                done[path.name] = executed
                print(f"{path.name}: {executed.seconds:.0f} s, peak {executed.peak_mib:.0f} MiB", flush=True)
    return done


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Execute the numbered notebooks in place (see the module doc).")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every numbered notebook but the explorer")
    parser.add_argument("--jobs", type=int, default=None, help="default: CNNLIB_NOTEBOOK_JOBS, else 2")
    parser.add_argument("--list", action="store_true", help="print the stages (one per line, paths), run nothing")
    parser.add_argument(
        "--list-part",
        choices=("in-order", "together", "longest", "after-longest"),
        help="print one part of the stages on one line, run nothing: the notebooks run one after another (every "
        "stage but the last), those run together (the last stage), the longest of those, or the others; for make's "
        "test recipes",
    )
    parser.add_argument("--explorer", action="store_true", help="with --list(-part): the explorer joins the last stage")
    parser.add_argument("--execute-one", type=Path, help=argparse.SUPPRESS)  # execute() runs this in a child
    parser.add_argument("--timeout", type=int, default=3600, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.execute_one:
        _execute_here(args.execute_one, args.timeout)
        return
    try:
        args.jobs = config.notebook_jobs() if args.jobs is None else args.jobs
    except config.SettingError as error:
        raise SystemExit(str(error)) from None
    paths = [p.resolve() for p in args.notebooks] or numbered_notebooks()
    if args.list or args.list_part:
        explorer = [NOTEBOOKS_DIR / "explore.ipynb"] if args.explorer else []
        listed = stages(paths)
        listed[-1] += explorer
        if args.list_part:
            parts = {
                "in-order": listed[:-1],
                "together": listed[-1:],
                "longest": [listed[-1][:1]],
                "after-longest": [listed[-1][1:]],
            }
            listed = [[p for stage in parts[args.list_part] for p in stage]]
        for stage in listed:
            print(" ".join(str(p.relative_to(config.REPO_ROOT)) for p in stage))
        return
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(f"No such notebook: {', '.join(missing)}")
    try:
        run_root = _run_root()
    except (config.SettingError, OSError, RuntimeError) as error:  # DatasetError is a RuntimeError
        raise SystemExit(str(error)) from None
    paths = placed_for_run(paths, run_root)
    if run_root is not None:
        print(f"Another class list: executing copies of the notebooks in {paths[0].parent}", flush=True)
    start = time.perf_counter()
    try:
        run(paths, args.jobs)
    except RuntimeError as error:
        raise SystemExit(str(error)) from None
    print(f"{len(paths)} notebooks in {time.perf_counter() - start:.0f} s ({args.jobs} at once after 01-03)")


if __name__ == "__main__":
    main()
