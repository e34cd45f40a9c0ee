"""cnnlib.models.training: determinism, weight transfer, early stopping and the model cache."""

from __future__ import annotations

import json
import os
import threading

import keras
import numpy as np
import pytest

from cnnlib import config
from cnnlib.models import architectures, training
from cnnlib.stats import evaluation
from cnnlib.store import files

pytestmark = pytest.mark.backends  # run once more on JAX by `make test-jax`


def _tiny_data(n_per_class=6, n_classes=3, seed=0):
    """Images whose class is the colour of a bright square: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_per_class), ("val", 2)):
        y = np.repeat(np.arange(n_classes), n).astype(np.int32)
        x = rng.integers(0, 60, size=(len(y), 224, 224, 3)).astype(np.uint8)
        for i, label in enumerate(y):
            x[i, 60:160, 60:160, label] = 250
        out[split] = (x, y)
    return out


SETTINGS = config.TrainSettings(max_epochs=3, patience=2)


def test_same_seed_gives_identical_training():
    data = _tiny_data()
    runs = []
    for _ in range(2):
        model, record = training.train_variant("arch1", data, SETTINGS, seed=5, n_classes=3, cache=False)
        runs.append((record["history"], model.get_layer("conv1").get_weights()[0]))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    other, _ = training.train_variant("arch1", data, SETTINGS, seed=6, n_classes=3, cache=False)
    assert not np.array_equal(other.get_layer("conv1").get_weights()[0], runs[0][1])


def test_transfer_copies_shared_layers_exactly():
    training.set_seed(1)
    source = architectures.build_model("arch2", n_classes=3)
    target = architectures.build_model("arch3", n_classes=3)
    before_head = target.get_layer("logits").get_weights()[0].copy()
    copied = training.transfer_weights(source, target)
    assert copied == ["conv1", "conv2", "conv3"]
    for name in copied:
        for w_src, w_dst in zip(source.get_layer(name).get_weights(), target.get_layer(name).get_weights()):
            np.testing.assert_array_equal(w_src, w_dst)
    np.testing.assert_array_equal(target.get_layer("logits").get_weights()[0], before_head)


def test_train_variant_records_transfer_and_requires_source():
    data = _tiny_data()
    arch1, _ = training.train_variant("arch1", data, SETTINGS, n_classes=3, cache=False)
    try:
        training.train_variant("arch2_transfer", data, SETTINGS, n_classes=3, cache=False)
    except ValueError as exc:
        assert "pass it as source_model" in str(exc)
    else:
        raise AssertionError("arch2_transfer without its source must fail")
    _, record = training.train_variant("arch2_transfer", data, SETTINGS, source_model=arch1, n_classes=3, cache=False)
    assert record["transferred_from"] == "arch1" and record["transferred_layers"] == ["conv1", "conv2"]
    assert 1 <= record["best_epoch"] <= record["epochs_run"] <= SETTINGS.max_epochs


def test_early_stopping_stops_and_restores_best():
    data = _tiny_data()
    settings = config.TrainSettings(max_epochs=40, patience=1, learning_rate=0.05)  # noisy: stops early
    model, record = training.train_variant("arch1", data, settings, n_classes=3, cache=False)
    assert record["epochs_run"] < settings.max_epochs
    assert record["epochs_run"] - record["best_epoch"] == settings.patience
    val_loss = model.evaluate(*data["val"], verbose=0)[0]
    assert abs(val_loss - min(record["history"]["val_loss"])) < 1e-4


def test_cache_returns_the_same_model():
    data = _tiny_data()
    first, record = training.train_variant("arch1", data, SETTINGS, n_classes=3, data_key="k")
    again, record_again = training.train_variant("arch1", data, SETTINGS, n_classes=3, data_key="k")
    assert record == record_again
    np.testing.assert_array_equal(
        evaluation.predict_labels(first, data["val"][0]), evaluation.predict_labels(again, data["val"][0])
    )
    assert len(list((config.cache_dir() / "models").glob("arch1_*.keras"))) == 1


def test_truncated_model_cache_is_retrained_not_loaded():
    data = _tiny_data()
    first, record = training.train_variant("arch1", data, SETTINGS, n_classes=3, data_key="t")
    (model_file,) = (config.cache_dir() / "models").glob("arch1_*.keras")
    model_file.write_bytes(model_file.read_bytes()[:200])
    again, record_again = training.train_variant("arch1", data, SETTINGS, n_classes=3, data_key="t")
    assert record_again == record  # same seed: the retrained model is the same model
    np.testing.assert_array_equal(first.get_layer("conv1").get_weights()[0], again.get_layer("conv1").get_weights()[0])


# --------------------------------------------------------------------------- issue 12

QUICK = config.TrainSettings(max_epochs=1, patience=1)


def test_data_key_is_required_with_the_cache():
    data = _tiny_data(n_per_class=2)
    for key in (None, ""):
        with pytest.raises(ValueError, match="needs data_key"):
            training.train_variant("arch1", data, QUICK, n_classes=3, data_key=key)
    with pytest.raises(ValueError, match="needs data_key"):
        training.train_variant("arch1", data, QUICK, n_classes=3)  # the old default ("") is gone
    assert not (config.cache_dir() / "models").exists()


def test_a_run_wanting_a_model_another_is_saving_waits_and_loads_it(monkeypatch):
    """Run B (another process: notebook 10 beside notebook 08) asks for the model while run A is between its
    save and its rename: B waits on the cache's lock and loads A's model instead of training it again."""
    data = _tiny_data(n_per_class=2)
    real_save, saves, other = keras.Model.save, [], {}

    def run_b():
        other["model"], other["record"] = training.train_variant("arch1", data, QUICK, n_classes=3, data_key="shared")

    def save_then_let_the_other_run_ask(self, path, *args, **kwargs):
        real_save(self, path, *args, **kwargs)
        saves.append(str(path))
        thread = threading.Thread(target=run_b)
        thread.start()
        thread.join(timeout=2.0)  # B cannot finish while A holds the lock
        assert thread.is_alive()
        other["thread"] = thread

    monkeypatch.setattr(keras.Model, "save", save_then_let_the_other_run_ask)
    model, record = training.train_variant("arch1", data, QUICK, n_classes=3, data_key="shared")
    other["thread"].join(timeout=60)
    assert len(saves) == 1 and other["record"] == record  # trained and saved once
    np.testing.assert_array_equal(
        other["model"].get_layer("conv1").get_weights()[0], model.get_layer("conv1").get_weights()[0]
    )
    folder = config.cache_dir() / "models"
    assert sorted(p.suffix for p in folder.iterdir() if not p.name.startswith(".")) == [".json", ".keras"]
    assert not list(folder.glob("*.tmp*"))  # no temporary left behind
    (record_file,) = folder.glob("*.json")
    assert json.loads(files.read_checked(record_file)) == record


def test_unwritable_model_cache_is_output_not_writable():
    config.cache_dir().mkdir(parents=True)
    (config.cache_dir() / "models").write_text("a file where the model folder should be")
    with pytest.raises(files.OutputNotWritable, match="Cannot write .*models/arch1_.*\\.keras"):
        training.train_variant("arch1", _tiny_data(n_per_class=2), QUICK, n_classes=3, data_key="k")


def test_model_cache_key_covers_data_seed_and_settings():
    base = training._cache_key("arch1", "split-a", 42, QUICK)
    assert base == training._cache_key("arch1", "split-a", 42, QUICK)
    others = {
        training._cache_key("arch1", "split-b", 42, QUICK),
        training._cache_key("arch1", "split-a", 43, QUICK),
        training._cache_key("arch1", "split-a", 42, SETTINGS),
        training._cache_key("arch2", "split-a", 42, QUICK),
    }
    assert base not in others and len(others) == 4


def test_stale_temporary_of_a_killed_save_is_swept_even_on_a_cache_hit():
    data = _tiny_data(n_per_class=2)
    training.train_variant("arch1", data, QUICK, n_classes=3, data_key="hit")
    folder = config.cache_dir() / "models"
    killed = [folder / ".arch1_0123456789abcdef.tmp.keras", folder / ".arch1_0123.keras.zq1x2c.tmp.keras"]
    for path in killed:  # the old fixed name and the new unique one, both from a run killed long ago
        path.write_bytes(b"PK half a zip")
        os.utime(path, (1e9, 1e9))
    files._swept.discard(folder)  # as in a new process
    training.train_variant("arch1", data, QUICK, n_classes=3, data_key="hit")  # loaded from the cache
    assert not any(path.exists() for path in killed)
