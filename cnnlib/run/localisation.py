"""The localisation benchmark: which upsampling puts Grad-CAM's heat on the evidence?

Networks of the project's three architectures (valid padding, the geometry whose upsampling is in question), each
trained from several seeds on synthetic marker images (``data.markers``: the class is a small marker's shape, at a
uniform random position, beside a class-neutral distractor), are scored on the same held-out marker images
(``interpret.checks.localisation``): pointing game and energy in the marker's box for every rule of
``upsample.UPSAMPLING``. Only networks whose test accuracy is above chance (one-sided binomial test, p < 0.001) are
scored: a network that has not learned the markers has no evidence to localise.

Entry point: ``python -m cnnlib.run.localisation`` (``make localisation``, about 15 minutes on 2 cores) writes
``results/localisation.json`` and ``figures/localisation_markers.jpg``; ``--record-benchmark`` adds its wall time to
``results/benchmarks.json``. Not part of ``make report``: notebook 07 and the report read the stored results.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from cnnlib import config
from cnnlib.data import markers
from cnnlib.interpret.checks import localisation
from cnnlib.interpret.gradcam import compare_upsampling
from cnnlib.models import architectures, training
from cnnlib.report import plots
from cnnlib.report.localisation_tables import localisation_rows
from cnnlib.store import artifacts, results


@dataclass(frozen=True)
class Benchmark:
    """The benchmark's settings (the defaults are the committed run's)."""

    architectures: tuple[str, ...] = ("arch1", "arch2", "arch3")
    seeds: int = 3  # networks per architecture, training seeds config.SEED + 0 .. seeds - 1
    train: int = 2000
    val: int = 400
    test: int = 300
    training: config.TrainSettings = replace(config.TrainSettings(), learning_rate=3e-4, max_epochs=60, patience=10)
    chance_p: float = 0.001  # a network is scored when its accuracy beats chance at this level (binomial)
    n_boot: int = 2_000


SMOKE = Benchmark(
    architectures=("arch1",),
    seeds=2,
    train=60,
    val=30,
    test=24,
    training=replace(config.TrainSettings(), max_epochs=1, patience=1),
    chance_p=1.0,
    n_boot=200,
)


def above_chance(correct: int, n: int, classes: int, p: float) -> bool:
    """True when ``correct`` of ``n`` beats guessing among ``classes`` (one-sided binomial test below ``p``)."""
    return bool(stats.binomtest(correct, n, 1 / classes, alternative="greater").pvalue < p)


def run_benchmark(bench: Benchmark = Benchmark(), seed: int = config.SEED, verbose: bool = True) -> tuple[dict, dict]:
    """Train every (architecture, seed) network on marker images and score every upsampling rule.

    Args:
        bench: the settings.
        seed: the one seed: data seeds ``seed``, ``seed + 1``, ``seed + 2`` (train, val, test); training seeds
            ``seed + k``.

    Returns:
        (payload, example): the ``results/localisation.json`` payload (without provenance), and what the figure
        needs: {"model", "seed", "test"}: the first scored network of the last architecture (the deepest, whose
        outermost field centres lie furthest inside the image, so the rules differ most) and the test images.
    """
    data = {
        split: markers.marker_images(n, seed + i)
        for i, (split, n) in enumerate((("train", bench.train), ("val", bench.val), ("test", bench.test)))
    }
    arrays = {split: (d.images, d.labels) for split, d in data.items()}
    test = data["test"]
    networks, scored, example = [], [], None
    for arch in bench.architectures:
        per_arch = []
        for k in range(bench.seeds):
            training.set_seed(seed + k)
            model = training.compile_model(architectures.build_model(arch, len(markers.MARKERS)), bench.training)
            started = time.perf_counter()
            history = training.fit(model, arrays, bench.training)
            predicted = model.predict(test.images, verbose=0).argmax(axis=1)
            correct = int((predicted == test.labels).sum())
            row = {
                "architecture": arch,
                "training_seed": seed + k,
                "epochs_run": history["epochs_run"],
                "test_accuracy": correct / len(test.labels),
                "scored": above_chance(correct, len(test.labels), len(markers.MARKERS), bench.chance_p),
                "train_seconds": round(time.perf_counter() - started, 1),
            }
            if row["scored"]:
                s = localisation.localisation_scores(model, test.images, test.labels, test.boxes)
                row["layer"] = s["layer"]
                per_arch.append(s)
                if example is None or example["model"].name != model.name:  # the last architecture's first
                    example = {"model": model, "seed": seed + k, "test": test}
            networks.append(row)
            if verbose:
                print({k: v for k, v in row.items() if k != "layer"}, flush=True)
        if len(per_arch) >= 2:
            scored.append((arch, per_arch))
    everything = [s for _, per_arch in scored for s in per_arch]
    if len(everything) < 2:
        raise RuntimeError(f"only {len(everything)} network(s) learned the markers above chance; nothing to compare.")
    pooled = localisation.summarize(everything, n_boot=bench.n_boot, seed=seed)
    payload = {
        "settings": {
            "architectures": list(bench.architectures),
            "seeds_per_architecture": bench.seeds,
            "images": {"train": bench.train, "val": bench.val, "test": bench.test},
            "marker_side": markers.MARKER_SIDE,
            "markers": list(markers.MARKERS),
            "max_epochs": bench.training.max_epochs,
            "patience": bench.training.patience,
            "pointing_tolerance": localisation.POINTING_TOLERANCE,
            "chance_p": bench.chance_p,
            "n_boot": bench.n_boot,
        },
        "methods": list(localisation.UPSAMPLING),
        "networks": networks,
        "pooled": pooled,
        "per_architecture": {
            arch: localisation.summarize(per_arch, n_boot=bench.n_boot, seed=seed) for arch, per_arch in scored
        },
        "winner": localisation.winner(pooled),
    }
    return payload, example


def example_figure(example: dict, count: int = 4):
    """The first ``count`` test marker images (evidence box outlined in white, just outside it) with each rule's
    Grad-CAM of their true class."""
    test, model = example["test"], example["model"]
    images = test.images[:count].copy()
    size = images.shape[1]
    for image, (top, left, bottom, right) in zip(images, test.boxes[:count]):
        top, left, bottom, right = max(top - 1, 0), max(left - 1, 0), min(bottom, size - 1), min(right, size - 1)
        image[[top, bottom], left : right + 1] = 255
        image[top : bottom + 1, [left, right]] = 255
    maps = compare_upsampling(model, test.images[:count], test.labels[:count])
    return plots.plot_gradcam_grid(
        images.astype(np.uint8),
        maps,
        [markers.MARKERS[k] for k in test.labels[:count]],
        f"Grad-CAM of the true class on marker images, {model.name} (training seed {example['seed']})",
        column_titles=list(localisation.UPSAMPLING),
    )


def stored_benchmark() -> tuple[dict, artifacts.SavedFigure]:
    """The committed benchmark (it does not depend on the class list): results/localisation.json and its figure."""
    if not (config.RESULTS_DIR / "localisation.json").is_file():
        raise FileNotFoundError(f"{config.RESULTS_DIR / 'localisation.json'} is missing: run `make localisation`.")
    payload = results.read_results("localisation", config.RESULTS_DIR)
    return payload, artifacts.SavedFigure(artifacts.outputs_for(config.CLASSES).figure_path("localisation_markers"))


def caltech_benchmark(model, split, annotations_root) -> list[dict] | str:
    """The benchmark on the test images' official Caltech-101 outlines (``CNNLIB_ANNOTATIONS_DIR``): the table rows
    of ``tables.localisation_rows`` for ``model``, or a sentence saying why there are none."""
    if annotations_root is None:
        return (
            "CNNLIB_ANNOTATIONS_DIR is not set (the images here come without Caltech-101's Annotations.tar): "
            "the synthetic-marker benchmark above is the evidence for the default."
        )
    x, y = split.arrays["test"]
    paths = [split.root / split.path_of("test", i) for i in range(len(y))]
    summary = localisation.caltech_scores(model, x.astype(np.float32), y, paths, annotations_root)
    if summary is None:
        return f"Fewer than two of the {len(y)} test images have an annotation under {annotations_root}."
    return localisation_rows(
        {"pooled": summary, "methods": list(localisation.UPSAMPLING)}, localisation.DEFAULT_UPSAMPLING
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m cnnlib.run.localisation``: run, write results/localisation.json and the example figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record-benchmark", action="store_true", help="record wall time in results/benchmarks.json")
    parser.add_argument("--smoke", action="store_true", help="a tiny run (1 epoch) that checks the pipeline only")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    payload, example = run_benchmark(SMOKE if args.smoke else Benchmark())
    payload["provenance"] = results.provenance(
        config.SEED, "synthetic marker images", "smoke" if args.smoke else "full"
    )
    folder = config.RESULTS_DIR if not args.smoke else config.cache_dir() / "localisation_smoke"
    results.write_results("localisation", payload, folder=folder)
    outputs = artifacts.outputs_for(config.CLASSES)
    if not args.smoke:
        outputs.save_figure(example_figure(example), "localisation_markers")
    print(f"winner: {payload['winner']}; wrote {folder / 'localisation.json'}")
    if args.record_benchmark and not args.smoke:
        results.update_benchmarks("localisation", {"wall_seconds": round(time.perf_counter() - started, 1)})


if __name__ == "__main__":
    main()
