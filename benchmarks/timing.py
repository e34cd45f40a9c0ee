"""Timing helper shared by the benchmarks: the median of several runs."""

from __future__ import annotations

import statistics
import time


def median_seconds(fn, repeats: int = 3, warmup: bool = False) -> float:
    """Median wall time of ``repeats`` calls of ``fn`` (after one untimed call if ``warmup``)."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def update_benchmarks(key: str, result: dict) -> None:
    """Store ``result`` under ``key`` in results/benchmarks.json, keeping every other key, and say so."""
    from cnnlib import config
    from cnnlib.store import results

    path = results.update_benchmarks(key, result)
    print("updated", path.relative_to(config.REPO_ROOT), "key", key)
