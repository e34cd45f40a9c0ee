"""Repeated runs for error bars: several training seeds on one split, several splits, one table.

Orchestrates ``training`` and ``vgg19`` (everything cached), and returns plain rows
{"model", "seed", "split_seed", "train", "val", "test"} that ``summarize`` turns into
mean +/- sd tables. Nothing here plots or writes results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cnnlib import config
from cnnlib.data import dataset, images, locate
from cnnlib.models import forward, training, vgg19
from cnnlib.stats import bootstrap, evaluation, statistics

SPLITS = ("train", "val", "test")


def _rows(metrics: Mapping[str, dict], seed: int, split_seed: int) -> list[dict]:
    return [
        {"model": name, "seed": seed, "split_seed": split_seed, **{s: m[s]["accuracy"] for s in SPLITS}}
        for name, m in metrics.items()
    ]


def run_split(
    split: images.ProjectSplit,
    split_seed: int,
    seeds: Sequence[int],
    settings: config.TrainSettings,
    n_classes: int = len(config.CLASSES),
    vgg_env: Mapping[str, str] | None = None,
) -> tuple[list[dict], dict, str]:
    """Train every custom variant and the VGG19 head once per seed on ``split``.

    Returns (accuracy rows, {seed: {model: test probabilities (N, C)}}, VGG19 weights label);
    the probabilities become per-image prediction records (``prediction_records``). With the random-init
    fallback the VGG19 base is drawn anew for each training seed (``weights_seed=seed``), so the spread
    counts the base's randomness too; ImageNet weights are the same for every seed.
    """
    rows, predictions, weight_labels = [], {}, []
    x_test, _ = split.arrays["test"]
    for seed in seeds:
        models, _ = training.train_all_variants(
            split.arrays, settings, seed, n_classes=n_classes, data_key=split.split_hash
        )
        metrics = {v: evaluation.evaluate(m, split.arrays, n_classes) for v, m in models.items()}
        predictions[seed] = {v: forward.predict(m, x_test, batch_size=64) for v, m in models.items()}
        run = vgg19.fit_classifier(
            split.arrays, split.split_hash, settings, seed, n_classes, env=vgg_env, weights_seed=seed
        )
        metrics["vgg19"] = evaluation.evaluate(run.head, run.features, n_classes)
        predictions[seed]["vgg19"] = forward.predict(run.head, run.features["test"][0], batch_size=64)
        rows += _rows(metrics, seed, split_seed)
        weight_labels.append(run.weights.label)
    labels = set(weight_labels)
    label = labels.pop() if len(labels) == 1 else "RANDOM INIT (one base per training seed), not ImageNet"
    return rows, predictions, label


def other_split(
    split_seed: int,
    classes: Sequence[str] = config.CLASSES,
    splits_dir: Path = config.SPLITS_DIR,
    sizes: Mapping[str, int] = config.SPLIT_SIZES,
) -> images.ProjectSplit:
    """A second split drawn with ``split_seed`` (``sizes`` images per class and split); its manifest is
    written to ``splits_dir`` like the first."""
    root = locate.ensure_dataset(classes)
    check = images.check_images(root, classes)
    manifest = dataset.make_split(root, classes, sizes, seed=split_seed, exclude=check.exclude)
    path = dataset.write_manifest(manifest, Path(splits_dir) / f"split_seed{split_seed}.csv")
    return images.ProjectSplit(root, manifest, dataset.manifest_hash(path), images.load_split(manifest, root, classes))


def prediction_records(
    split: images.ProjectSplit, probabilities: Mapping[int, Mapping[str, np.ndarray]], classes: Sequence[str]
) -> dict[str, dict[str, dict]]:
    """{seed: {model: statistics.prediction_record}} for ``run_split``'s probabilities on the test images."""
    y_test = split.arrays["test"][1]
    ids = [split.path_of("test", i) for i in range(len(y_test))]
    return {
        str(seed): {m: statistics.prediction_record(p, y_test, ids, classes) for m, p in by_model.items()}
        for seed, by_model in probabilities.items()
    }


def correct_by_run(records: Mapping[str, Mapping[str, dict]]) -> dict[str, dict[str, np.ndarray]]:
    """{run: {model: bool (N,)}}: which test images each model got right, from stored records."""
    return {
        run: {m: statistics.read_prediction_record(r).correct for m, r in by_model.items()}
        for run, by_model in records.items()
    }


def summary_table(summary: Mapping[str, Mapping[str, dict]]) -> pd.DataFrame:
    """``statistics.run_summary`` as a table: runs, then "mean +/- sd [95% t-interval]" in percent per split.

    The sd describes the runs; the t-interval is for the mean over runs (seeds or splits).
    """
    rows = {}
    for model, by_split in summary.items():
        rows[model] = {"runs": next(iter(by_split.values()))["n"]}
        for split, t in by_split.items():
            low, high = t["ci"]
            rows[model][split] = f"{100 * t['mean']:.1f} +/- {100 * t['sd']:.1f} [{100 * low:.1f}, {100 * high:.1f}]"
    return pd.DataFrame.from_dict(rows, orient="index")


def comparison_table(rows: Sequence[Mapping]) -> pd.DataFrame:
    """``statistics.mcnemar_family`` rows as a table: discordant counts, difference [Newcombe 95%], p, Holm p."""
    return pd.DataFrame(
        [
            {
                "A": r["A"],
                "B": r["B"],
                "A right, B wrong": r["a_only"],
                "A wrong, B right": r["b_only"],
                "difference A - B (points)": (
                    f"{100 * r['difference']:+.0f} [{100 * r['ci'][0]:+.1f}, {100 * r['ci'][1]:+.1f}]"
                ),
                "p (McNemar)": f"{r['p']:.3f}",
                "p (Holm)": "tested alone" if r["p_holm"] is None else f"{r['p_holm']:.3f}",
                "direction": r["direction"],
            }
            for r in rows
        ]
    )


def bootstrap_difference(
    correct: Mapping[str, Mapping[str, np.ndarray]],
    pair: tuple[str, str],
    seeds: Sequence[int],
    n_boot: int,
    seed: int = config.SEED,
    repeats: int = 0,
) -> dict[str, dict]:
    """Accuracy difference A - B of ``pair`` with bootstrap intervals at both levels of uncertainty.

    Args:
        correct: ``correct_by_run``'s {run (str(seed)): {model: bool (N,)}}.
        pair: (A, B) model names.
        seeds: the training seeds whose runs enter the seeds x images level.
        n_boot: resamples per bootstrap.
        seed: the run of the images level, and the bootstrap's random seed.
        repeats: > 0: instead of the intervals, the endpoints' Monte Carlo error over this many repeats of each
            bootstrap with other random seeds (``bootstrap.endpoint_monte_carlo_sd``).

    Returns:
        {"images (seed <seed>)": paired bootstrap over the test images, "seeds x images": hierarchical bootstrap
        over the seeds and the images} (each a ``statistics`` bootstrap dict, or its Monte Carlo error).
    """
    a, b = pair
    by_images = (correct[str(seed)][a], correct[str(seed)][b])
    by_seeds = (np.stack([correct[str(k)][a] for k in seeds]), np.stack([correct[str(k)][b] for k in seeds]))
    levels = {
        f"images (seed {seed})": (bootstrap.paired_bootstrap, by_images),
        "seeds x images": (bootstrap.hierarchical_bootstrap, by_seeds),
    }
    if repeats:
        return {
            level: bootstrap.endpoint_monte_carlo_sd(f, *values, n_boot, repeats)
            for level, (f, values) in levels.items()
        }
    return {level: f(*values, n_boot, seed) for level, (f, values) in levels.items()}


def bootstrap_table(bootstrap: Mapping[str, Mapping[str, dict]]) -> pd.DataFrame:
    """{pair: ``bootstrap_difference``} as a table: "difference [95% interval]" in points per level."""
    return pd.DataFrame(
        {
            pair: {
                level: f"{100 * r['difference']:+.1f} [{100 * r['ci'][0]:+.1f}, {100 * r['ci'][1]:+.1f}]"
                for level, r in by_level.items()
            }
            for pair, by_level in bootstrap.items()
        }
    ).T


def monte_carlo_table(monte_carlo: Mapping[str, dict]) -> pd.DataFrame:
    """``bootstrap_difference(..., repeats=R)`` as a table: each endpoint's sd and range over the repeats, points."""

    def spread(m: Mapping, k: int) -> str:
        low, high = m["range"][k]
        return f"{100 * m['sd'][k]:.2f} [{100 * low:+.1f}, {100 * high:+.1f}]"

    return pd.DataFrame(
        {
            level: {
                "lower endpoint: sd [min, max]": spread(m, 0),
                "upper endpoint: sd [min, max]": spread(m, 1),
                "repeats x resamples": f"{m['repeats']} x {m['n_boot']:,}",
            }
            for level, m in monte_carlo.items()
        }
    ).T
