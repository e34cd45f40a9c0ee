"""Fill the idle lane: train notebook 08's independent runs ahead of it, on a core nobody is using.

After notebooks 01-03 the later notebooks run two at a time (``cnnlib.run.notebooks``, ``make test``'s nbval). Notebook
08 (the seed and split statistics) is the longest by far; the other lane runs every other notebook and then idles
for about a third of the stage. This module fills that time: it trains 08's runs (training seed x split seed: the
custom variants and the VGG19 head) into the model cache, starting from the last run 08 will reach, whenever a core
has been idle for ``IDLE_SECONDS``. Notebook 08 then loads what is already trained and trains the rest itself; where
both reach the same model, the cache's lock (``training.cached_training``) makes one train and the other load it.

The trained bytes are the same whichever process trains them: both run under the pinned arithmetic
(``cnnlib.arithmetic``: same kernels, same thread count), and the cache key names everything a model depends on.
So this only moves work in time; it never changes a number (``make compare`` checks it after every CI run).
It never fails the job it accompanies: any error stops the idle lane with one line, and 08 does the rest.

    python -m cnnlib.run.idle_lane -- COMMAND ...   (run COMMAND; fill the idle lane until it ends; exit with its code)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from cnnlib import config

IDLE_SECONDS = 6.0  # a core idle this long (three samples of 2 s) is a free lane, not a pause between notebooks
SAMPLE_SECONDS = 2.0
IDLE_CORES = 0.6  # "idle": at least this many cores' worth of time unused during a sample


def planned_runs(
    seeds: Sequence[int] = config.STATISTICS_SEEDS,
    split_seeds: Sequence[int] = config.SPLIT_SEEDS,
    seed: int = config.SEED,
) -> list[tuple[int, int]]:
    """Notebook 08's runs as (split seed, training seed), in the reverse of the order 08 trains them, without the
    committed split's run with ``seed`` (notebooks 02 and 03 trained it)."""
    forward = [(seed, s) for s in seeds] + [(split_seed, seed) for split_seed in split_seeds if split_seed != seed]
    return [run for run in reversed(forward) if run != (seed, seed)]


def _cpu_times() -> tuple[float, float]:
    """(idle, total) jiffies of all cores since boot, from ``/proc/stat`` (idle includes iowait)."""
    with open("/proc/stat") as stat:
        fields = [float(x) for x in stat.readline().split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])


def idle_cores(seconds: float = SAMPLE_SECONDS) -> float:
    """Cores' worth of CPU time unused during the next ``seconds`` (0 .. number of cores)."""
    idle0, total0 = _cpu_times()
    time.sleep(seconds)
    idle1, total1 = _cpu_times()
    return (idle1 - idle0) / max(total1 - total0, 1.0) * (os.cpu_count() or 1)


def wait_for_idle_core(still_wanted: Callable[[], bool], idle: Callable[[], float] = idle_cores) -> bool:
    """Block until a core has been idle for ``IDLE_SECONDS`` in a row; False if ``still_wanted()`` turned False."""
    streak = 0.0
    while still_wanted():
        streak = streak + SAMPLE_SECONDS if idle() >= IDLE_CORES else 0.0
        if streak >= IDLE_SECONDS:
            return True
    return False


def train_ahead(runs: Sequence[tuple[int, int]], still_wanted: Callable[[], bool] = lambda: True) -> list[tuple]:
    """Train each (split seed, training seed) run of notebook 08 into the model cache when a core is idle, with
    the reference's (or ``CNNLIB_CLASSES``'s) classes and profile as 08 reads them. Returns the runs trained."""
    from cnnlib.run import session
    from cnnlib.stats import experiments

    s = session.start(config.classes_setting(), config.SEED, config.profile_name())
    trained = []
    for split_seed, seed in runs:
        if not wait_for_idle_core(still_wanted):
            break
        start = time.perf_counter()
        split = s.split
        if split_seed != s.seed:
            split = experiments.other_split(split_seed, s.classes, s.outputs.splits_dir, s.split_sizes)
        experiments.run_split(split, split_seed, [seed], s.settings, len(s.classes))
        trained.append((split_seed, seed))
        print(f"idle lane: split {split_seed}, seed {seed} trained in {time.perf_counter() - start:.0f} s", flush=True)
    return trained


@contextmanager
def filled() -> Iterator[None]:
    """While the ``with`` block runs, a child process trains notebook 08's runs in the idle lane; it is stopped
    (SIGTERM) when the block ends, finished or not: a half-written model is a temporary file no run reads."""
    child = subprocess.Popen([sys.executable, "-m", "cnnlib.run.idle_lane", "--train-ahead"])
    try:
        yield
    finally:
        child.terminate()
        child.wait()


def _train_ahead_quietly() -> None:
    """The child's work: ``train_ahead`` of ``planned_runs()``; any error is one line (08 trains the rest)."""
    try:
        train_ahead(planned_runs())
    except Exception as error:  # noqa: BLE001 - the idle lane is an optimisation, never a failure
        print(f"idle lane stopped ({type(error).__name__}: {error}); notebook 08 trains the rest", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--train-ahead"]:
        _train_ahead_quietly()
        return
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise SystemExit("usage: python -m cnnlib.run.idle_lane -- COMMAND ... (see the module doc)")
    with filled():
        code = subprocess.call(argv)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
