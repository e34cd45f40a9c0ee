"""Benchmark: how fast the explorer answers each interaction, on the best custom network and on VGG19.

Part of `make bench`; alone: `python benchmarks/bench_explore.py [--before REF] [--browser] --update` (merges its
result into results/benchmarks.json under "explorer"). The explorer is driven as a user drives it (setting widget
values), on the project's split and cached models. Each interaction is timed from the change to the new picture in
the Image widget (computation + drawing + JPEG), median over its steps after a first, untimed call (which also
compiles the method's graphs; reported as ``first_call_s``), and split into what it was made of (``made_of``:
forward and backward passes, the weights check, drawing; ``Frame.seconds`` and ``Frame.passes``).

``--before REF`` times the explorer of another commit in the same run (a clone of REF sharing this checkout's
model cache), so the two are measured on the same machine at the same time. ``--browser`` adds the same
interactions timed in a real browser, from the widget change to the new picture painted
(``cnnlib.explore.browser``). Targets (issue 30, 2 cores): a redraw that needs no new pass <= 0.1 s, one new
backward pass <= 0.8 s, a new image <= 1.0 s, loading VGG19 with its weights cached <= 5 s.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from timing import update_benchmarks  # noqa: E402

from cnnlib import config, explore  # first: imports TensorFlow quietly

TARGETS = {"no pass": 0.1, "one backward pass": 0.8, "new image": 1.0, "load": 5.0}  # seconds
STEPS = 9


def _positions(count: int, h: int, w: int) -> list[dict]:
    """``count`` distinct neuron positions, none of them (0, 0) (where the setup leaves the neuron)."""
    return [dict(row=i % h, col=(3 * i) % w) for i in range(1, count + 1)]


def interactions(layer_shape: tuple[int, int, int]) -> dict[str, tuple[dict, list[dict], str]]:
    """{interaction: (setup, steps, what it needs)}: the setup is set once (untimed), then each step is timed."""
    h, w, channels = layer_shape
    return {
        "Grad-CAM: change target class": (
            dict(method="Grad-CAM"),
            [dict(target=t % 5) for t in range(1, STEPS + 1)],
            "no pass",
        ),
        "feature map + neuron: change channel": (
            dict(method="feature map + neuron", at_argmax=True),
            [dict(channel=c % channels) for c in range(1, STEPS + 1)],
            "no pass",
        ),
        "feature map + neuron: move the neuron": (
            dict(method="feature map + neuron", at_argmax=False, row=0, col=0),
            _positions(STEPS, h, w),
            "no pass",
        ),
        "guided backprop: move the neuron": (
            dict(method="guided backprop", at_argmax=False, row=0, col=0),
            _positions(STEPS, h, w),
            "one backward pass",
        ),
        "Grad-CAM: change image": (
            dict(method="Grad-CAM", target=-1, index=0),
            [dict(index=i) for i in range(1, STEPS + 1)],
            "new image",
        ),
    }


def _made_of(frames) -> dict:
    """Median seconds per component over the frames, and the passes most frames made."""
    kinds = sorted({k for f in frames for k in f.seconds})
    parts = {k: round(statistics.median(f.seconds.get(k, 0.0) for f in frames), 4) for k in kinds}
    passes = Counter(json.dumps(f.passes, sort_keys=True) for f in frames).most_common(1)[0][0]
    return {"seconds": parts, "passes": json.loads(passes)}


def time_model(explorer: explore.Explorer, name: str) -> dict:
    """Load ``name`` (weights cached), then time every interaction on its last convolution layer."""
    explorer.session.unload(name)  # loaded again from the cache (the explorer opened with the custom network)
    start = time.perf_counter()
    explorer.session.entry(name)
    load = time.perf_counter() - start
    start = time.perf_counter()
    explorer.model.value = name
    first_picture = time.perf_counter() - start
    layer = list(explorer.layer.options)[-1]
    explorer.set(layer=layer, channel=0, target=-1)
    rows = {}
    for label, (setup, steps, needs) in interactions(explorer.frame.layer_shape).items():
        start = time.perf_counter()
        explorer.set(**setup)
        first = time.perf_counter() - start
        times, frames = [], []
        for step in steps:
            start = time.perf_counter()
            frame = explorer.set(**step)
            times.append(time.perf_counter() - start)
            assert not frame.message, (label, step, frame.message)
            frames.append(frame)
        median = statistics.median(times)
        rows[label] = {
            "median_s": round(median, 4),
            "max_s": round(max(times), 4),
            "n": len(times),
            "first_call_s": round(first, 3),
            "needs": needs,
            "target_s": TARGETS[needs],
            "meets_target": median <= TARGETS[needs],
            "made_of": _made_of(frames),
        }
    return {
        "model": name,
        "layer": layer,
        "weights": explorer.frame.weights,
        "load_s": round(load, 2),
        "load_target_s": TARGETS["load"],
        "first_picture_s": round(first_picture, 2),
        "interactions": rows,
    }


def run() -> dict:
    """The explorer's Python-side latencies on the best custom network and on VGG19 (this checkout's code)."""
    explorer = explore.project_explorer()
    custom = explorer.model.value
    result = {"custom": time_model(explorer, custom), "vgg19": time_model(explorer, "vgg19")}
    result["note"] = (
        "seconds from a widget change to the new picture in the Image widget (Python side), median over each "
        "interaction's steps; made_of: median seconds of each part (forward/backward passes, weights check, draw)"
    )
    return result


def run_before(ref: str) -> dict:
    """The explorer benchmark of commit ``ref`` (its own script and code), in a clone sharing this model cache."""
    repo = config.REPO_ROOT
    with tempfile.TemporaryDirectory(prefix="bench-explore-") as tmp:
        root = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(repo), str(root)], check=True)
        subprocess.run(["git", "checkout", "--quiet", ref], cwd=root, check=True)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout
        env = {**os.environ, "PYTHONPATH": str(root), "CNNLIB_CACHE_DIR": str(config.cache_dir())}
        subprocess.run([sys.executable, "benchmarks/bench_explore.py", "--update"], cwd=root, env=env, check=True)
        before = json.loads((root / "results" / "benchmarks.json").read_text())["explorer"]
    return {"commit": commit.strip()[:12], **before}


def compare(before: dict, after: dict) -> dict:
    """{model kind: {interaction: before median / after median}} for the interactions both timed; for VGG19 also
    loading plus the first picture (what the earlier benchmark's ``load_s`` timed: the model widget's change)."""
    ratios = {}
    for kind in ("custom", "vgg19"):
        old, new = before[kind]["interactions"], after[kind]["interactions"]
        ratios[kind] = {
            label: round(old[label]["median_s"] / new[label]["median_s"], 1)
            for label in sorted(old.keys() & new.keys())
        }
    loaded = after["vgg19"]["load_s"] + after["vgg19"]["first_picture_s"]
    ratios["vgg19"]["load and first picture"] = round(before["vgg19"]["load_s"] / loaded, 1)
    return ratios


def show(summary: dict) -> None:
    for kind in ("custom", "vgg19"):
        block = summary[kind]
        print(
            f"{block['model']} ({block['weights']}), layer {block['layer']}: loaded in {block['load_s']:.2f} s, "
            f"first picture {block['first_picture_s']:.2f} s"
        )
        for label, row in block["interactions"].items():
            parts = ", ".join(f"{k} {v:.3f}" for k, v in row["made_of"]["seconds"].items())
            print(
                f"  {label:40s} median {row['median_s']:.3f} s (target {row['target_s']} s: "
                f"{'meets' if row['meets_target'] else 'MISSES'}), max {row['max_s']:.3f} s, "
                f"first call {row['first_call_s']:.2f} s; {parts}; passes {row['made_of']['passes']}"
            )


if __name__ == "__main__":
    result = run()
    show(result)
    if "--before" in sys.argv:
        result["before"] = run_before(sys.argv[sys.argv.index("--before") + 1])
        result["speedup"] = compare(result["before"], result)
        print("before / after:", json.dumps(result["speedup"], indent=1))
    if "--browser" in sys.argv:
        from cnnlib.explore import browser

        result["browser"] = browser.latencies()
    if "--update" in sys.argv:
        update_benchmarks("explorer", result)
