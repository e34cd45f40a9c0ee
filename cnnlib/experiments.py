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

from cnnlib import config, data, evaluation, images, training, vgg19

SPLITS = ("train", "val", "test")


def _rows(metrics: Mapping[str, dict], seed: int, split_seed: int) -> list[dict]:
    return [{"model": name, "seed": seed, "split_seed": split_seed, **{s: m[s]["accuracy"] for s in SPLITS}}
            for name, m in metrics.items()]


def run_split(
    split: images.ProjectSplit, split_seed: int, seeds: Sequence[int], settings: config.TrainSettings,
    n_classes: int = len(config.CLASSES), vgg_env: Mapping[str, str] | None = None,
) -> tuple[list[dict], dict, str]:
    """Train every custom variant and the VGG19 head once per seed on ``split``.

    Returns (accuracy rows, {seed: {model: test predictions}}, VGG19 weights label); the
    predictions feed McNemar tests.
    """
    rows, predictions = [], {}
    x_test, _ = split.arrays["test"]
    for seed in seeds:
        models, _ = training.train_all_variants(split.arrays, settings, seed, n_classes=n_classes,
                                                data_key=split.split_hash)
        metrics = {v: evaluation.evaluate(m, split.arrays, n_classes) for v, m in models.items()}
        predictions[seed] = {v: evaluation.predict_labels(m, x_test) for v, m in models.items()}
        run = vgg19.fit_classifier(split.arrays, split.split_hash, settings, seed, n_classes, env=vgg_env,
                                   weights_seed=config.SEED)
        metrics["vgg19"] = evaluation.evaluate(run.head, run.features, n_classes)
        predictions[seed]["vgg19"] = evaluation.predict_labels(run.head, run.features["test"][0])
        rows += _rows(metrics, seed, split_seed)
    return rows, predictions, run.weights.label


def other_split(
    split_seed: int, classes: Sequence[str] = config.CLASSES, splits_dir: Path = config.SPLITS_DIR
) -> images.ProjectSplit:
    """A second split drawn with ``split_seed``; its manifest is written to ``splits_dir`` like the first."""
    root = data.ensure_dataset(classes)
    check = images.check_images(root, classes)
    manifest = data.make_split(root, classes, config.SPLIT_SIZES, seed=split_seed, exclude=check.exclude)
    path = data.write_manifest(manifest, Path(splits_dir) / f"split_seed{split_seed}.csv")
    return images.ProjectSplit(root, manifest, data.manifest_hash(path), images.load_split(manifest, root, classes))


def summarize(rows: list[dict], by: str = "model") -> pd.DataFrame:
    """Mean +/- sample sd (and the number of runs) of each split's accuracy, per ``by``, in percent."""
    frame = pd.DataFrame(rows)
    out = {}
    for name, group in frame.groupby(by, sort=False):
        out[name] = {"runs": len(group)}
        for split in SPLITS:
            mean, sd = evaluation.mean_sd(group[split])
            out[name][split] = f"{100 * mean:.1f} +/- {100 * sd:.1f}"
    return pd.DataFrame.from_dict(out, orient="index")


def best_by_val_per_run(rows: list[dict], custom_only: bool = True) -> dict[str, str]:
    """For each (split seed, seed) run, which custom model has the highest validation accuracy."""
    frame = pd.DataFrame(rows)
    if custom_only:
        frame = frame[frame["model"] != "vgg19"]
    picks = {}
    for (split_seed, seed), group in frame.groupby(["split_seed", "seed"], sort=False):
        order = list(group["model"])
        picks[f"split {split_seed}, seed {seed}"] = max(order, key=lambda m: (float(group[group["model"] == m]["val"].iloc[0]),
                                                                              -order.index(m)))
    return picks


def mcnemar_table(y_true: np.ndarray, predictions: Mapping[str, np.ndarray], pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """McNemar's exact test on the test set for each (model A, model B) pair."""
    rows = []
    for a, b in pairs:
        result = evaluation.mcnemar_exact(y_true, predictions[a], predictions[b])
        rows.append({"A": a, "B": b, "A right, B wrong": result["a_only"], "A wrong, B right": result["b_only"],
                     "p": result["p_value"], "significant at 5%": bool(result["p_value"] < 0.05)})
    return pd.DataFrame(rows)
