"""cnnlib.run.scale: the Caltech-101 protocol on a tiny synthetic folder (few classes of random images)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_dataset

from cnnlib import config
from cnnlib.data import dataset, locate
from cnnlib.run import scale
from cnnlib.stats import evaluation
from cnnlib.store import artifacts, results

CLASSES = ("alpha", "beta", "gamma", "delta")
PROTOCOL = {"train_per_class": 6, "val_per_class": 2, "max_test": 4}


def test_protocol_counts_are_seeded_disjoint_and_short_classes_are_named(tmp_path):
    root = make_dataset(tmp_path / "images", CLASSES, per_class=12)
    make_dataset(tmp_path / "images", ("tiny",), per_class=5, seed=1)
    assert locate.class_folders(root) == sorted(CLASSES + ("tiny",))
    with pytest.raises(dataset.DatasetError, match=r"tiny: 5 images"):
        scale.scale_manifest(root, locate.class_folders(root), seed=3, **PROTOCOL)
    manifest = scale.scale_manifest(root, CLASSES, seed=3, **PROTOCOL)
    counts = manifest.groupby(["split", "class"]).size().unstack()
    assert (counts.loc["train"] == 4).all() and (counts.loc["val"] == 2).all() and (counts.loc["test"] == 4).all()
    assert manifest["path"].is_unique  # no image in two roles
    assert list(manifest["split"]) == sorted(manifest["split"], key=scale.SPLIT_ORDER.index)  # contiguous splits
    assert manifest.equals(scale.scale_manifest(root, CLASSES, seed=3, **PROTOCOL))  # seeded
    assert not manifest.equals(scale.scale_manifest(root, CLASSES, seed=4, **PROTOCOL))
    few = scale.scale_manifest(root, CLASSES, seed=3, train_per_class=9, val_per_class=2, max_test=50)
    assert (few[few["split"] == "test"].groupby("class").size() == 3).all()  # "up to": the rest


def test_decoded_images_are_a_cached_memory_map_and_splits_are_views(tmp_path):
    root = make_dataset(tmp_path / "images", CLASSES, per_class=12)
    manifest = scale.scale_manifest(root, CLASSES, seed=0, **PROTOCOL)
    decoded = scale.decoded_images(manifest, root, size=32)
    assert isinstance(decoded, np.memmap) and decoded.shape == (len(manifest), 32, 32, 3)
    arrays = scale.split_arrays(manifest, decoded, CLASSES)
    assert all(np.shares_memory(x, decoded) for x, _ in arrays.values())
    assert [len(y) for _, y in arrays.values()] == [16, 8, 16]
    (cached,) = config.cache_dir().glob("decoded/*.npy")
    stamp = cached.stat().st_mtime_ns
    np.testing.assert_array_equal(scale.decoded_images(manifest, root, size=32), decoded)
    assert cached.stat().st_mtime_ns == stamp  # reused, not rewritten


def test_mean_per_class_accuracy_and_stratified_interval():
    y = np.array([0] * 10 + [1] * 2)
    pred = np.array([0] * 10 + [0, 1])  # class 0: 100%, class 1: 50% -> mean 75% (overall 92%)
    stats = evaluation.mean_per_class_accuracy(y, pred, 3, n_boot=500, seed=1)
    assert stats["mean"] == pytest.approx(0.75) and np.isnan(stats["per_class"][2])
    low, high = stats["ci"]
    assert 0.5 <= low < 0.75 < high <= 1.0  # class 1 resampled from {right, wrong}: 50%, 75% or 100%
    assert evaluation.mean_per_class_accuracy(y, y, 2, n_boot=50)["ci"] == [1.0, 1.0]


def test_run_scale_end_to_end_writes_results_and_figure(tmp_path, monkeypatch):
    root = make_dataset(tmp_path / "images", CLASSES, per_class=12)
    monkeypatch.setenv("CNNLIB_VGG19_WEIGHTS", "random")
    settings = config.TrainSettings(max_epochs=2, patience=1)
    payload = scale.run_scale(
        root, CLASSES, settings, seed=0, variants=("arch1",), **PROTOCOL
    )  # 224 px: the custom nets need it
    assert set(payload["models"]) == {"arch1", "vgg19"}
    assert payload["vgg19_is_imagenet"] is False and "NOT ImageNet" in payload["vgg19_note"]
    for model in payload["models"].values():
        assert 0 <= model["interval"]["ci"][0] <= model["mean_per_class_accuracy"] <= model["interval"]["ci"][1] <= 1
        assert np.asarray(model["confusion"]).sum() == 16 and len(model["easiest_10"]) == len(CLASSES)
        assert all(n == 4 for _, _, n in model["easiest_10"])  # [class, accuracy, test images]
    assert payload["distribution"] == "default (one device)"
    results.write_results("scale_test", payload, folder=tmp_path)
    assert json.loads((tmp_path / "scale_test.json").read_text())["protocol"]["images"] == {
        "test": 16,
        "train": 16,
        "val": 8,
    }
    figures = scale.confusion_figures(payload)
    assert list(figures) == ["arch1", "vgg19"]  # the best custom network, then VGG19, one figure each
    for model, figure in figures.items():
        matrix, colour_bar = figure.axes
        assert [t.get_text() for t in matrix.get_yticklabels()] == list(CLASSES)  # every class named
        assert model in matrix.get_title() and ("VGG19 weights" in matrix.get_title()) == (model == "vgg19")
    again = scale.run_scale(
        root, CLASSES, settings, seed=0, variants=("arch1",), **PROTOCOL
    )  # 224 px: the custom nets need it
    assert again["models"] == payload["models"]  # seeded and cached: the same numbers


def test_update_benchmarks_keeps_other_keys(tmp_path):
    path = tmp_path / "benchmarks.json"
    path.write_text(json.dumps({"vgg19": {"x": 1}}))
    results.update_benchmarks("scale", {"wall_seconds": 3.0}, path)
    assert json.loads(path.read_text()) == {"vgg19": {"x": 1}, "scale": {"wall_seconds": 3.0}}


def test_figures_only_redraws_the_stored_results_without_training(tmp_path, monkeypatch):
    """``--figures-only``: the figures come from results/<name>.json alone, the same bytes as from the run."""
    classes = [f"class_{i:02d}" for i in range(12)]
    rng = np.random.default_rng(0)
    models = {
        name: {
            "val_accuracy": val,
            "mean_per_class_accuracy": 0.5,
            "confusion": (rng.integers(0, 4, (12, 12)) + 6 * np.eye(12, dtype=int)).tolist(),
        }
        for name, val in (("arch1", 0.4), ("arch2", 0.6), ("vgg19", 0.9))
    }
    weights = {"label": "RANDOM INIT (seed 42), not ImageNet"}
    payload = {"class_names": classes, "models": models, "vgg19_weights": weights}
    stored = json.loads(json.dumps(payload))
    monkeypatch.setattr(scale.results, "read_results", lambda name: stored if name == "scale_all" else None)
    monkeypatch.setattr(scale, "run_scale", lambda *a, **k: pytest.fail("--figures-only must not train"))
    monkeypatch.setattr(scale.artifacts, "outputs_for", lambda c: artifacts.Outputs(tuple(c), tmp_path / "redrawn"))
    scale.main(["--figures-only"])
    redrawn = sorted(p.name for p in (tmp_path / "redrawn" / "figures").iterdir())
    assert redrawn == ["scale_confusion_arch2.png", "scale_confusion_vgg19.png"]  # best custom by validation
    monkeypatch.setattr(scale.artifacts, "outputs_for", lambda c: artifacts.Outputs(tuple(c), tmp_path / "direct"))
    scale.save_confusion_figures(payload)
    for name in redrawn:
        redrawn_bytes = (tmp_path / "redrawn" / "figures" / name).read_bytes()
        assert redrawn_bytes == (tmp_path / "direct" / "figures" / name).read_bytes()
