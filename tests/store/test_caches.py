"""Every on-disk cache refuses what it cannot trust: damaged entries, entries of other code, of an older version.

Five caches (memo results, per-image features, per-image channel maxima, trained models, decoded images), each
damaged four ways (truncated, random bytes, one byte changed inside the payload, an entry in an older format):
the next call returns what a fresh computation returns, recomputes exactly the damaged entry, and says so in a
``CacheEntryDamaged`` warning naming the file. Keys cover the code that computes an entry: a changed function,
preprocessing or decoder is a new key (``memo.code_closure_digest``).
"""

from __future__ import annotations

import hashlib
import io
import pickle

import numpy as np
import pytest
from conftest import make_dataset

from cnnlib import config
from cnnlib.data import dataset, images
from cnnlib.models import architectures, feature_cache, training
from cnnlib.store import files, memo
from cnnlib.store.files import CacheEntryDamaged

DAMAGES = ("truncated", "random bytes", "one byte changed", "older format")


def _damage(path, how: str, older_payload: bytes) -> None:
    raw = path.read_bytes()
    if how == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "random bytes":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, len(raw), dtype=np.uint8).tobytes())
    elif how == "one byte changed":  # inside the payload, past every header: a plausible but wrong value
        middle = len(raw) - max(len(raw) // 4, 1)
        path.write_bytes(raw[:middle] + bytes([raw[middle] ^ 0x10]) + raw[middle + 1 :])
    else:  # what the code before digests wrote at the same place: the bare payload (here of a wrong value)
        path.write_bytes(older_payload)


CALLS: list[int] = []


def _square_sum(x: np.ndarray) -> float:
    CALLS.append(1)
    return float((x.astype(np.float64) ** 2).sum())


@pytest.mark.parametrize("how", DAMAGES)
def test_memo_entry(how):
    x = np.arange(50, dtype=np.float32)
    CALLS.clear()
    expected = memo.call(_square_sum, x)
    (entry,) = config.cache_dir().glob("results/*/*.pkl")
    _damage(entry, how, pickle.dumps(expected + 1.0))
    with pytest.warns(CacheEntryDamaged, match=str(entry.name)):
        assert memo.call(_square_sum, x) == expected
    assert CALLS == [1, 1]  # computed again, once
    assert memo.call(_square_sum, x) == expected and CALLS == [1, 1]  # and stored intact


def _features(images: np.ndarray) -> tuple[np.ndarray, int]:
    def forward(batch):
        return batch.reshape(len(batch), -1)[:, :6].astype(np.float32) / 7

    identity = feature_cache.identity_key("cnnlib.models.forward", test="damage")
    return feature_cache.cached_image_features(forward, identity, images, (6,), batch_size=2)


def _channel_maxima(images: np.ndarray) -> tuple[np.ndarray, int]:
    from cnnlib.interpret import patches

    training.set_seed(0)
    model = architectures.build_model("arch1", n_classes=3, image_size=images.shape[1])
    values, positions = patches.channel_maxima_of_layers(model, images, ["conv1"], cache=True)["conv1"]
    return np.concatenate([values, positions.astype(np.float32)], axis=1), 0


@pytest.mark.parametrize("compute", [_features, _channel_maxima], ids=["features", "channel maxima"])
@pytest.mark.parametrize("how", DAMAGES)
def test_per_image_entry(how, compute):
    images = np.random.default_rng(1).integers(0, 256, (4, 96, 96, 3), dtype=np.uint8)
    expected, _ = compute(images)
    digest = feature_cache.image_digest(images[2])
    (entry,) = config.cache_dir().glob(f"features/*/*/{digest}.npy")
    buffer = io.BytesIO()
    np.save(buffer, np.zeros_like(expected[2]))
    _damage(entry, how, buffer.getvalue())
    with pytest.warns(CacheEntryDamaged, match=digest):
        again, computed = compute(images)
    np.testing.assert_array_equal(again, expected)
    if compute is _features:
        assert computed == 1  # only the damaged image went through the network again


def test_feature_key_follows_the_code_that_computes_them(tmp_path):
    """A changed preprocessing (or anything the extractor's module imports) is a new key; a comment is not."""
    package = tmp_path / "cnnlib"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helper.py").write_text("def preprocess(x):\n    return x / 255\n")
    (package / "extract.py").write_text("from cnnlib.helper import preprocess\n")
    (package / "report.py").write_text("TITLE = 'a'\n")
    before = memo.code_closure_digest("cnnlib.extract", package_dir=package)
    (package / "report.py").write_text("TITLE = 'b'\n")  # not imported by the extractor: same key
    assert memo.code_closure_digest("cnnlib.extract", package_dir=package) == before
    (package / "helper.py").write_text("def preprocess(x):\n    # scaled\n    return x / 255\n")
    assert memo.code_closure_digest("cnnlib.extract", package_dir=package) == before
    (package / "helper.py").write_text("def preprocess(x):\n    return x / 127.5 - 1\n")
    assert memo.code_closure_digest("cnnlib.extract", package_dir=package) != before
    assert sorted(memo.code_closure("cnnlib.extract", package_dir=package)) == [
        "__init__.py",
        "extract.py",
        "helper.py",
    ]


def test_real_keys_cover_the_code_of_what_they_compute():
    assert {"models/vgg19.py", "models/forward.py", "models/feature_cache.py"} <= set(
        memo.code_closure("cnnlib.models.vgg19")
    )
    assert {"models/training.py", "models/architectures.py", "config.py"} <= set(
        memo.code_closure("cnnlib.models.training")
    )
    images_closure = memo.code_closure("cnnlib.data.images")
    assert "data/images.py" in images_closure and not any(name.startswith("report/") for name in images_closure)
    assert not any(name.startswith(("models/", "interpret/")) for name in images_closure)
    assert memo.code_closure_digest("cnnlib.data.images") in images.decoder_identity()


TRAINED: list[int] = []


def _train():
    """What the model cache stores does not depend on how the weights came about: a seeded build stands in."""
    TRAINED.append(1)
    training.set_seed(0)
    return architectures.build_model("arch1", n_classes=3, image_size=96), {"history": {"loss": [0.5]}}


@pytest.mark.parametrize(
    "stored, older",
    [("toy.keras", b"PK\x05\x06" + bytes(18)), ("toy.json", b'{"history": {"loss": [9.0]}}')],
    ids=["model", "record"],  # older: an empty zip an interrupted writer left; plain JSON as written before digests
)
@pytest.mark.parametrize("how", DAMAGES)
def test_trained_model(how, stored, older):
    TRAINED.clear()
    model, record = training.cached_training("toy", _train)
    _damage(config.cache_dir() / "models" / stored, how, older)
    with pytest.warns(CacheEntryDamaged, match=stored):
        again, again_record = training.cached_training("toy", _train)
    assert TRAINED == [1, 1] and again_record == record
    np.testing.assert_array_equal(again.get_layer("conv1").get_weights()[0], model.get_layer("conv1").get_weights()[0])


@pytest.mark.parametrize("how", DAMAGES[:3])  # an older decoder's cache: the test after this one
def test_decoded_images(tmp_path, how):
    root = make_dataset(tmp_path / "images", ("alpha", "beta"), per_class=5)
    manifest = dataset.make_split(root, ("alpha", "beta"), {"train": 3, "val": 1, "test": 1}, seed=0)
    expected = images.load_split(manifest, root, ("alpha", "beta"), size=16)
    (entry,) = config.cache_dir().glob("images_*.npz")
    buffer = io.BytesIO()
    np.savez(buffer, **{f"{k}_{s}": np.zeros_like(v) for s, xy in expected.items() for k, v in zip("xy", xy)})
    _damage(entry, how, buffer.getvalue())
    with pytest.warns(CacheEntryDamaged, match=entry.name):
        again = images.load_split(manifest, root, ("alpha", "beta"), size=16)
    assert all(np.array_equal(again[s][0], expected[s][0]) for s in expected)


def test_decoded_images_of_an_older_decoder_are_never_read(tmp_path):
    """The cache the code before this key wrote (name from manifest, size and classes only; pixels decoded
    differently) sits in the cache folder: today's code never reads it."""
    root = make_dataset(tmp_path / "images", ("alpha", "beta"), per_class=5)
    classes = ("alpha", "beta")
    manifest = dataset.make_split(root, classes, {"train": 3, "val": 1, "test": 1}, seed=0)
    old_text = manifest.to_csv(index=False) + f"|16|{images.RESIZE_METHOD}|{list(classes)}"
    old_key = hashlib.sha256(old_text.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    stale = {f"x_{s}": np.full((int((manifest["split"] == s).sum()), 16, 16, 3), 4, np.uint8) for s in ("train",)}
    config.cache_dir().mkdir(parents=True, exist_ok=True)
    np.savez(config.cache_dir() / f"images_{old_key}.npz", **stale, y_train=np.zeros(6, np.int32))
    arrays = images.load_split(manifest, root, classes, size=16)
    assert arrays["train"][0].max() > 4  # decoded now, not the older decoder's pixels


def test_read_checked_accepts_only_what_write_checked_wrote(tmp_path):
    path = files.write_checked(tmp_path / "entry.bin", b"payload")
    assert files.read_checked(path) == b"payload"
    assert files.read_checked(tmp_path / "missing.bin") is None  # no warning for a plain miss
    path.write_bytes(path.read_bytes().replace(b"payload", b"paYload"))
    with pytest.warns(CacheEntryDamaged, match=r"entry.bin does not match its SHA-256"):
        assert files.read_checked(path) is None
    assert not path.exists()  # removed, so it is written again
