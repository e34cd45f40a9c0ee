"""The all-categories run: the standard Caltech-101 protocol on every class folder present.

Protocol (``scale_manifest``): per class, seeded, ``train_per_class`` (30) images for training, of
which ``val_per_class`` (5) are held out for early stopping, and up to ``max_test`` (50) test
images from the rest. Decoded images live in one memory-mapped ``.npy`` file in the cache (each
split a contiguous slice, so nothing is held in memory twice); VGG19 features come from the
per-image cache (``cnnlib.models.feature_cache``). ``run_scale`` trains the custom networks and the VGG19
head (``training`` and ``vgg19`` build under ``distribute.strategy()``: MirroredStrategy on several
GPUs, a no-op otherwise) and
reports mean per-class accuracy with a stratified bootstrap interval.

Entry point: ``python -m cnnlib.run.scale`` writes ``results/scale_all.json`` and one confusion figure per
shown model (``figures/scale_confusion_<model>.png``); ``--record-benchmark`` adds its wall time and peak memory
to ``results/benchmarks.json`` (key ``scale``); ``--figures-only`` redraws the figures from the stored results.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from cnnlib import config
from cnnlib.data import dataset, images, locate
from cnnlib.models import distribute, training, vgg19
from cnnlib.report import plots, tables
from cnnlib.stats import evaluation
from cnnlib.store import artifacts, results
from cnnlib.store.files import CacheEntryDamaged, atomic_write, atomic_write_bytes, file_sha256

TRAIN_PER_CLASS, VAL_PER_CLASS, MAX_TEST = 30, 5, 50
SPLIT_ORDER = ("train", "val", "test")
DEFAULT_VARIANTS = ("arch1", "arch2", "arch2_transfer", "arch3", "arch3_transfer")


def scale_manifest(
    root: Path,
    classes: Sequence[str],
    seed: int = config.SEED,
    train_per_class: int = TRAIN_PER_CLASS,
    val_per_class: int = VAL_PER_CLASS,
    max_test: int = MAX_TEST,
) -> pd.DataFrame:
    """Seeded per-class draw: columns path, class, split (train/val/test), sha256; rows grouped by split.

    A class with fewer than ``train_per_class + 1`` images is a ``DatasetError`` listing every such class.
    """
    if not 0 < val_per_class < train_per_class:
        raise ValueError(f"val_per_class={val_per_class} must be between 1 and train_per_class - 1.")
    listing = dataset.list_images(root, classes)
    rng = np.random.default_rng(seed)
    rows, short = [], []
    for cls in classes:
        paths = sorted(listing.loc[listing["class"] == cls, "path"])
        if len(paths) < train_per_class + 1:
            short.append(f"{cls}: {len(paths)} images")
            continue
        order = [paths[i] for i in rng.permutation(len(paths))]
        roles = (
            ["val"] * val_per_class
            + ["train"] * (train_per_class - val_per_class)
            + ["test"] * min(max_test, len(paths) - train_per_class)
        )
        rows += [{"path": p, "class": cls, "split": r} for p, r in zip(order, roles)]
    if short:
        raise dataset.DatasetError(
            f"{len(short)} class(es) have fewer than {train_per_class + 1} images (the protocol "
            f"needs {train_per_class} for training and at least one to test): {short}. "
            "Leave them out of the class list."
        )
    frame = pd.DataFrame(rows)
    frame["split"] = pd.Categorical(frame["split"], SPLIT_ORDER)
    frame = frame.sort_values(["split", "class", "path"], kind="stable").reset_index(drop=True)
    frame["split"] = frame["split"].astype(str)
    frame["sha256"] = [hashlib.sha256(images._read(Path(root) / p)).hexdigest() for p in frame["path"]]
    return frame


def manifest_key(manifest: pd.DataFrame, size: int) -> str:
    """Identity of a manifest's decoded images: its rows (with file hashes), the size, resize method and decoder."""
    text = manifest.to_csv(index=False) + f"|{size}|{images.RESIZE_METHOD}|{images.decoder_identity()}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def decoded_images(manifest: pd.DataFrame, root: Path, size: int = config.IMAGE_SIZE) -> np.ndarray:
    """Every manifest image decoded once into a read-only memory map, uint8 (N, size, size, 3).

    Cached as ``<cache_dir>/decoded/<manifest_key>.npy`` (written atomically) with its SHA-256 beside it
    (``.sha256``, checked on every use: a mismatch is decoded again with a warning); each image file's SHA-256
    is compared with the manifest's before decoding.
    """
    path = config.cache_dir() / "decoded" / f"{manifest_key(manifest, size)}.npy"
    digest_file = path.with_suffix(".sha256")  # the memory map's bytes, checked before it is used
    shape = (len(manifest), size, size, 3)
    if path.is_file():
        try:
            intact = digest_file.read_text().strip() == file_sha256(path)
            stored = np.load(path, mmap_mode="r")
            if intact and stored.shape == shape and stored.dtype == np.uint8:
                return stored
        except (OSError, ValueError):
            intact = False
        if not intact:
            warnings.warn(
                f"Decoded-image cache {path} does not match its SHA-256 ({digest_file.name}): decoding again.",
                CacheEntryDamaged,
                stacklevel=2,
            )

    def write(tmp: Path) -> None:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        for i, (rel, digest) in enumerate(
            tqdm(list(zip(manifest["path"], manifest["sha256"])), desc="decoding images", disable=None)
        ):
            payload = images._read(Path(root) / rel)
            if hashlib.sha256(payload).hexdigest() != digest:
                raise dataset.DatasetError(
                    f"{dataset.shown(Path(root) / rel)} changed while the run was starting; rerun."
                )
            out[i] = images.load_image(Path(root) / rel, size, payload)
        out.flush()
        del out

    digest_file.unlink(missing_ok=True)  # never beside another file's bytes
    atomic_write(path, write)
    atomic_write_bytes(digest_file, file_sha256(path).encode())
    return np.load(path, mmap_mode="r")


def split_arrays(manifest: pd.DataFrame, decoded: np.ndarray, classes: Sequence[str]) -> dict:
    """{split: (images: a slice of the memory map, labels int32)}: no copy of the pixels."""
    index = {c: i for i, c in enumerate(classes)}
    out = {}
    for split in SPLIT_ORDER:
        rows = np.flatnonzero(manifest["split"].to_numpy() == split)
        out[split] = (decoded[rows[0] : rows[-1] + 1], manifest["class"].iloc[rows].map(index).to_numpy(np.int32))
    return out


def summarise(name: str, y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str], seed: int) -> dict:
    """Mean per-class accuracy with its interval, overall accuracy, 10 easiest and hardest classes, confusion."""
    stats = evaluation.mean_per_class_accuracy(y_true, y_pred, len(classes), seed=seed)
    per_class = dict(zip(classes, (round(a, 6) for a in stats.pop("per_class"))))
    counts = dict(zip(classes, np.bincount(y_true, minlength=len(classes)).tolist()))
    easiest = sorted(per_class, key=lambda c: (-per_class[c], -counts[c], c))  # ties: more test images first
    hardest = sorted(per_class, key=lambda c: (per_class[c], -counts[c], c))
    return {
        "model": name,
        "mean_per_class_accuracy": stats.pop("mean"),
        "interval": stats,
        "overall_accuracy": float(np.mean(y_true == y_pred)),
        "n_test": int(len(y_true)),
        "easiest_10": [[c, per_class[c], counts[c]] for c in easiest[:10]],  # [class, accuracy, test images]
        "hardest_10": [[c, per_class[c], counts[c]] for c in hardest[:10]],
        "per_class_accuracy": per_class,
        "confusion": evaluation.split_metrics(y_true, y_pred, len(classes))["confusion"],
    }


def run_scale(
    root: Path,
    classes: Sequence[str],
    settings: config.TrainSettings,
    seed: int = config.SEED,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    size: int = config.IMAGE_SIZE,
    with_vgg19: bool = True,
    **protocol: int,
) -> dict:
    """The whole scale run; returns the results payload (``results.write_results``-ready, figures not drawn)."""
    manifest = scale_manifest(root, classes, seed, **protocol)
    key = manifest_key(manifest, size)
    arrays = split_arrays(manifest, decoded_images(manifest, root, size), classes)
    n = len(classes)
    active = distribute.strategy()  # training.train_variant and vgg19.train_head build under its scope
    models, records = {}, {}
    for variant in variants:
        model, record = training.train_with_sources(
            variant, arrays, settings, seed, n_classes=n, data_key=f"scale-{key}"
        )
        models[variant] = model
        records[variant] = {"epochs_run": record["epochs_run"], "best_epoch": record["best_epoch"]}
    y_test = arrays["test"][1]
    summary = {
        v: summarise(v, y_test, evaluation.predict_labels(m, arrays["test"][0]), classes, seed)
        for v, m in models.items()
    }
    for v, m in models.items():
        summary[v]["val_accuracy"] = float(np.mean(evaluation.predict_labels(m, arrays["val"][0]) == arrays["val"][1]))
    weights = None
    if with_vgg19:
        base, weights = vgg19.load_base(seed=config.SEED, image_size=size)
        features = vgg19.cached_features(base, weights, arrays)
        del base
        head, record = vgg19.train_head(features, settings, n, seed)
        summary["vgg19"] = summarise(
            "vgg19", y_test, evaluation.predict_labels(head, features["test"][0]), classes, seed
        )
        summary["vgg19"]["val_accuracy"] = float(
            np.mean(evaluation.predict_labels(head, features["val"][0]) == features["val"][1])
        )
        records["vgg19"] = {"epochs_run": record["epochs_run"], "best_epoch": record["best_epoch"]}
    counts = manifest.groupby(["split"]).size().to_dict()
    payload = {
        "protocol": {
            "classes": len(classes),
            "train_per_class": protocol.get("train_per_class", TRAIN_PER_CLASS),
            "of_which_validation": protocol.get("val_per_class", VAL_PER_CLASS),
            "max_test_per_class": protocol.get("max_test", MAX_TEST),
            "images": counts,
            "metric": "mean per-class accuracy on the test images; 95% interval: stratified bootstrap "
            "(test images resampled within each class, 2000 replicates, percentile)",
        },
        "class_names": list(classes),
        "models": summary,
        "training": records,
        "distribution": distribute.describe(active),
        "provenance": results.provenance(
            seed,
            key,
            config.profile_name(),
            training_settings=settings.__dict__,
            manifest="per-class seeded draw (cnnlib.run.scale.scale_manifest); key = "
            "SHA-256 of its rows with file hashes, image size and resize",
        ),
    }
    if weights is not None:
        payload["vgg19_weights"] = weights.as_dict()
        payload["vgg19_is_imagenet"] = weights.is_imagenet
        if not weights.is_imagenet:
            payload["vgg19_note"] = (
                f"VGG19 is a {weights.label} fallback: its numbers are NOT ImageNet transfer-learning results."
            )
    return payload


def confusion_figures(payload: dict, models: Sequence[str] | None = None) -> dict:
    """One full-width confusion figure per model ({model: Figure}; default ``tables.scale_shown_models``), each titled
    with the model, its mean per-class accuracy and, for VGG19, its weights."""
    found, n = payload["models"], len(payload["class_names"])
    label = payload.get("vgg19_weights", {}).get("label", "")
    figures = {}
    for m in tables.scale_shown_models(payload) if models is None else models:
        accuracy = 100 * found[m]["mean_per_class_accuracy"]
        title = f"Caltech-101, {n} classes, {m}: mean per-class accuracy {accuracy:.1f}%"
        if m == "vgg19" and label:
            title += f"\nVGG19 weights: {label}"
        figures[m] = plots.plot_confusion_full(found[m]["confusion"], payload["class_names"], title)
    return figures


def save_confusion_figures(payload: dict) -> list[Path]:
    """Write ``figures/scale_confusion_<model>.png`` (300 dpi) for ``tables.scale_shown_models``; return the paths."""
    outputs = artifacts.outputs_for(config.CLASSES)
    return [outputs.save_figure(fig, "scale_confusion", model=m).path for m, fig in confusion_figures(payload).items()]


def main(argv: Sequence[str] | None = None) -> dict:
    """``python -m cnnlib.run.scale``: run, write results/<name>.json and figures/scale_confusion_<model>.png."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", default="all", help="'all' (every class folder) or a comma-separated list")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
    parser.add_argument("--seed", type=int, default=config.SEED)
    parser.add_argument("--no-vgg19", action="store_true")
    parser.add_argument("--name", default="scale_all", help="results file name (results/<name>.json)")
    parser.add_argument("--record-benchmark", action="store_true", help="add time and memory to benchmarks.json")
    parser.add_argument(
        "--figures-only",
        action="store_true",
        help="redraw the confusion figures from the stored results/<name>.json (no training)",
    )
    args = parser.parse_args(argv)
    if args.figures_only:
        payload = results.read_results(args.name)
        written = ", ".join(path.name for path in save_confusion_figures(payload))
        print(f"wrote {written} from results/{args.name}.json")
        return payload
    start = time.perf_counter()
    classes = locate.resolve_classes(args.classes)  # "all": every class folder (clutter excluded)
    root = locate.find_dataset(classes)
    if root is None:
        raise dataset.DatasetError(
            "Set CNNLIB_DATA_DIR (or CALTECH101_DIR) to the folder of class folders for the scale run."
        )
    payload = run_scale(
        root,
        classes,
        config.train_settings(),
        args.seed,
        [v for v in args.variants.split(",") if v],
        with_vgg19=not args.no_vgg19,
    )
    results.write_results(args.name, payload, compact=True)
    figures = save_confusion_figures(payload)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss / 1024
    for name, model in payload["models"].items():
        low, high = model["interval"]["ci"]
        print(
            f"{name:16s} mean per-class accuracy {100 * model['mean_per_class_accuracy']:5.1f}% "
            f"[{100 * low:.1f}, {100 * high:.1f}]  (overall {100 * model['overall_accuracy']:.1f}%)"
        )
    written = ", ".join(f.name for f in figures)
    print(f"wrote results/{args.name}.json and {written}; {seconds:.0f} s, peak memory {peak:.0f} MiB")
    if args.record_benchmark:
        results.update_benchmarks(
            "scale",
            {
                "wall_seconds": round(seconds, 1),
                "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
                "peak_rss_mib": round(peak, 1),
                "classes": len(classes),
                "images": payload["protocol"]["images"],
                "variants": list(payload["training"]),
                "vgg19_weights": payload.get("vgg19_weights", {}).get("label"),
                "cpu_count": __import__("os").cpu_count(),
                "note": "one run, cold caches, nice -n 10 on a 2-core machine shared with other jobs",
            },
        )
    return payload


if __name__ == "__main__":
    main()
