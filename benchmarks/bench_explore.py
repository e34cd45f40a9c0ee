"""Benchmark: how fast the explorer redraws after one interaction, on a custom network and on VGG19.

Part of `make bench`; alone: `python benchmarks/bench_explore.py --update` (merges its result into
results/benchmarks.json under "explorer"). The explorer is driven as a user drives it (setting a
widget's .value), on the project's split and cached models; each interaction is timed from the
.value change to the new picture in the Image widget (computation + drawing + JPEG), median over
``repeats`` changes after a warm-up. Targets: <= 0.3 s on a custom network, <= 1.5 s on VGG19.
The first call of a method on a model also compiles its graph; that cost is reported apart.
"""

from __future__ import annotations

import statistics
import sys
import time

from timing import update_benchmarks  # noqa: E402

from cnnlib import explore  # first: imports TensorFlow quietly

TARGETS = {"custom": 0.3, "vgg19": 1.5}


def _interactions(explorer: explore.Explorer, layers: list[str]) -> dict[str, list]:
    """{interaction: [(control, value), ...]} cycled through when timing."""
    return {
        "Grad-CAM: change target class": [("target", t) for t in (0, 1, 2, 3, 4)],
        "guided backprop: move the neuron": [("row", r) for r in (0, 1, 2, 3, 1)],
        "feature map + neuron: change channel": [("channel", c) for c in (0, 1, 2, 3, 4)],
        "Grad-CAM: change image": [("index", i) for i in (1, 2, 3, 4, 5)],
    }


def _time_model(explorer: explore.Explorer, name: str, repeats: int) -> dict:
    start = time.perf_counter()
    explorer.model.value = name
    load = time.perf_counter() - start
    layers = list(explorer.layer.options)
    rows = {}
    setups = {
        "Grad-CAM: change target class": dict(method="Grad-CAM", layer=layers[-1]),
        "guided backprop: move the neuron": dict(method="guided backprop", layer=layers[-1], at_argmax=False),
        "feature map + neuron: change channel": dict(method="feature map + neuron", layer=layers[-1]),
        "Grad-CAM: change image": dict(method="Grad-CAM", layer=layers[-1], target=-1),
    }
    for label, steps in _interactions(explorer, layers).items():
        start = time.perf_counter()
        explorer.set(**setups[label])  # first call: compiles graphs for this method and layer
        first = time.perf_counter() - start
        times = []
        for control, value in (steps * ((repeats // len(steps)) + 1))[:repeats]:
            widget = getattr(explorer, control)
            if widget.value == value:
                continue
            start = time.perf_counter()
            widget.value = value
            times.append(time.perf_counter() - start)
            assert not explorer.frame.message, explorer.frame.message
        rows[label] = {
            "median_s": statistics.median(times),
            "max_s": max(times),
            "n": len(times),
            "first_call_s": first,
        }
    return {
        "model": name,
        "weights": explorer.frame.weights,
        "load_s": load,
        "interactions": rows,
        "median_s": statistics.median(r["median_s"] for r in rows.values()),
    }


def run(repeats: int = 9) -> dict:
    explorer = explore.project_explorer()
    custom = explorer.model.value
    result = {"custom": _time_model(explorer, custom, repeats), "vgg19": _time_model(explorer, "vgg19", repeats)}
    for kind, target in TARGETS.items():
        worst = max(r["median_s"] for r in result[kind]["interactions"].values())
        result[kind].update(target_s=target, worst_median_s=worst, meets_target=worst <= target)
    result["note"] = (
        "seconds from a widget's .value change to the new picture in the Image widget (Python side; "
        "the browser's transfer and paint are not included); median of each interaction"
    )
    return result


def show(summary: dict) -> None:
    for kind in ("custom", "vgg19"):
        block = summary[kind]
        print(
            f"{block['model']} ({block['weights']}): loaded in {block['load_s']:.1f} s; target <= {block['target_s']} s"
        )
        for label, row in block["interactions"].items():
            print(
                f"  {label:40s} median {row['median_s']:.3f} s  max {row['max_s']:.3f} s  "
                f"(first call {row['first_call_s']:.2f} s)"
            )
        print(
            f"  worst median {block['worst_median_s']:.3f} s: "
            f"{'meets' if block['meets_target'] else 'MISSES'} the target"
        )


if __name__ == "__main__":
    result = run()
    show(result)
    if "--update" in sys.argv:
        update_benchmarks("explorer", result)
