"""Seeding, compile/fit with early stopping (Table 2), weight transfer, and a trained-model cache."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from cnnlib import arithmetic, backend, config
from cnnlib.backend import keras
from cnnlib.models import distribute
from cnnlib.models.architectures import ARCHITECTURES, VARIANTS, build_model
from cnnlib.store.files import (
    CacheEntryDamaged,
    atomic_write,
    exclusive_lock,
    not_writable,
    read_checked,
    sweep_once,
    write_checked,
)
from cnnlib.store.memo import code_closure_digest

Arrays = dict[str, tuple[np.ndarray, np.ndarray]]


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and make TensorFlow ops deterministic.

    Same seed, same machine -> same weights, same shuffles, same metrics.
    """
    keras.utils.set_random_seed(seed)
    backend.make_deterministic()


def compile_model(model: keras.Model, settings: config.TrainSettings) -> keras.Model:
    """Adam at ``settings.learning_rate``, sparse categorical cross-entropy, accuracy."""
    model.compile(
        optimizer=keras.optimizers.Adam(settings.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def fit(model: keras.Model, data: Arrays, settings: config.TrainSettings, verbose: int = 0) -> dict:
    """Train on ``data['train']`` with early stopping on ``data['val']``; best weights restored.

    Returns {"epochs_run", "best_epoch" (1-based), "history": {metric: [per epoch]}}.
    """
    stopper = keras.callbacks.EarlyStopping(
        monitor=settings.monitor, patience=settings.patience, restore_best_weights=True
    )
    x, y = data["train"]
    history = model.fit(
        x,
        y,
        validation_data=data["val"],
        batch_size=settings.batch_size,
        epochs=settings.max_epochs,
        callbacks=[stopper],
        shuffle=True,
        verbose=verbose,
    )
    curves = {k: [round(float(v), 6) for v in vals] for k, vals in history.history.items()}
    best = int(np.argmin(curves[settings.monitor])) + 1
    return {"epochs_run": len(curves[settings.monitor]), "best_epoch": best, "history": curves}


def transfer_weights(source: keras.Model, target: keras.Model) -> list[str]:
    """Copy weights of every layer that both models have under the same name and shapes.

    Returns the names of the layers copied (the shared convolution stack; the
    heads differ in shape and are left at their initialisation).
    """
    copied = []
    source_layers = {layer.name: layer for layer in source.layers}
    for layer in target.layers:
        twin = source_layers.get(layer.name)
        if twin is None or not layer.weights:
            continue
        if [w.shape for w in twin.get_weights()] == [w.shape for w in layer.get_weights()]:
            layer.set_weights(twin.get_weights())
            copied.append(layer.name)
    return copied


def _cache_key(variant: str, data_key: str, seed: int, settings: config.TrainSettings) -> str:
    architecture, source = VARIANTS[variant]
    recipe = {
        "variant": variant,
        "layers": [asdict(s) for s in ARCHITECTURES[architecture]],
        "source": source,
        "data": data_key,
        "seed": seed,
        "settings": asdict(settings),
        "keras": keras.__version__,
        **backend.versions(),
        "numpy": np.__version__,
        "arithmetic": arithmetic.describe(),
        "code": code_closure_digest("cnnlib.models.training"),  # building, compiling, fitting: any change retrains
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def train_variant(
    variant: str,
    data: Arrays,
    settings: config.TrainSettings,
    seed: int = config.SEED,
    source_model: keras.Model | None = None,
    n_classes: int = len(config.CLASSES),
    data_key: str | None = None,
    cache: bool = True,
) -> tuple[keras.Model, dict]:
    """Build, (transfer,) train one variant of ``VARIANTS``; return (model, training record).

    The seed is set right before building, so each variant's initialisation does not
    depend on what ran before it. With ``cache`` the trained model and its record are
    stored under ``config.cache_dir()/models``, keyed by variant, data, seed and
    settings; a later call with the same key loads instead of training. ``data_key``
    (e.g. the split hash) is required with ``cache``: without it a model trained on
    other data could be returned. Files are written under unique temporary names and
    renamed, so runs training the same variant at once on one cache all succeed.
    """
    architecture, source = VARIANTS[variant]
    if source is not None and source_model is None:
        raise ValueError(f"{variant} starts from trained {source}; pass it as source_model.")
    if cache and not data_key:
        raise ValueError(
            f"train_variant({variant!r}) with cache=True needs data_key (e.g. data_key=split.split_hash, the "
            "SHA-256 of the split manifest): the model cache must know which data a model was trained on. "
            "Pass cache=False to train without the cache."
        )

    def train() -> tuple[keras.Model, dict]:
        set_seed(seed)
        with distribute.strategy().scope():  # several GPUs: MirroredStrategy; else a no-op
            model = compile_model(build_model(architecture, n_classes, name=variant), settings)
        record: dict = {
            "variant": variant,
            "architecture": architecture,
            "transferred_from": source,
            "transferred_layers": [],
        }
        if source_model is not None:
            record["transferred_layers"] = transfer_weights(source_model, model)
        record.update(fit(model, data, settings))
        return model, record

    if not cache:
        return train()
    return cached_training(f"{variant}_{_cache_key(variant, data_key, seed, settings)}", train)


def cached_training(name: str, train: Callable[[], tuple[keras.Model, dict]]) -> tuple[keras.Model, dict]:
    """``train()``'s (model, record), stored as ``config.cache_dir()/models/<name>.{keras,json}`` and loaded
    from there when present. ``name`` must identify everything the training depends on (a hash of the
    recipe). Files are written under unique temporary names and renamed, model first, so runs training
    the same model at once on one cache all succeed and a record is only ever found beside a complete model.
    """
    folder = config.cache_dir() / "models"
    model_file, record_file = folder / f"{name}.keras", folder / f"{name}.json"
    sweep_once(folder)  # temporaries left by killed runs (never read, only removed)
    if (found := _load_cached(model_file, record_file)) is not None:
        return found
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise not_writable(model_file, exc) from exc
    # One trainer per model: a process that finds another training it (notebooks 09 and 10 want notebook 08's seed 43
    # while 08 runs beside them) waits and loads its result instead of training the same model twice.
    with exclusive_lock(folder / f".{name}.lock"):
        if (found := _load_cached(model_file, record_file)) is not None:
            return found
        model, record = train()
        atomic_write(model_file, model.save)
        write_checked(record_file, json.dumps(record).encode())
    return model, record


def _load_cached(model_file: Path, record_file: Path) -> tuple[keras.Model, dict] | None:
    """The cached (model, record), or None when absent or damaged (then removed, with a warning)."""
    if model_file.is_file() and (record := read_checked(record_file)) is not None:
        try:  # the .keras zip's CRC-32 checks catch changed or truncated model bytes
            return keras.models.load_model(model_file), json.loads(record)
        except Exception as exc:  # noqa: BLE001 - any unreadable model (truncated, changed bytes) is retrained
            warnings.warn(
                f"Cached model {model_file} cannot be loaded ({type(exc).__name__}): removed, training it again.",
                CacheEntryDamaged,
                stacklevel=3,
            )
            model_file.unlink(missing_ok=True)
    return None


def train_with_sources(
    variant: str, data: Arrays, settings: config.TrainSettings, seed: int = config.SEED, **kwargs
) -> tuple[keras.Model, dict]:
    """``train_variant`` after (cached) training of the chain of variants it starts from."""
    source = VARIANTS[variant][1]
    source_model = train_with_sources(source, data, settings, seed, **kwargs)[0] if source else None
    return train_variant(variant, data, settings, seed, source_model=source_model, **kwargs)


def train_all_variants(
    data: Arrays, settings: config.TrainSettings, seed: int = config.SEED, **kwargs
) -> tuple[dict[str, keras.Model], dict[str, dict]]:
    """Train every variant in ``VARIANTS`` order (sources before the variants built on them)."""
    models, records = {}, {}
    for variant, (_, source) in VARIANTS.items():
        models[variant], records[variant] = train_variant(
            variant, data, settings, seed, source_model=models.get(source) if source else None, **kwargs
        )
    return models, records


def train_on_permuted_labels(
    variant: str,
    data: Arrays,
    seed: int = config.SEED,
    n_classes: int = len(config.CLASSES),
    data_key: str | None = None,
    epochs: int = 60,
) -> tuple[keras.Model, dict, Arrays]:
    """Adebayo et al.'s data randomisation: ``variant``'s architecture trained from scratch on the
    training images with labels permuted by ``seed``, for ``epochs`` epochs with no early stop
    (so it can memorise). Returns (model, training record, the permuted training data as
    {"train": (x, permuted y)}); cached like any variant.
    """
    x_train, y_train = data["train"]
    permuted = {"train": (x_train, np.random.default_rng(seed).permutation(y_train)), "val": data["val"]}
    memorise = config.TrainSettings(max_epochs=epochs, patience=epochs, monitor="loss")
    key = None if data_key is None else data_key + "-permuted-labels"
    model, record = train_variant(VARIANTS[variant][0], permuted, memorise, seed, n_classes=n_classes, data_key=key)
    return model, record, {"train": permuted["train"]}
