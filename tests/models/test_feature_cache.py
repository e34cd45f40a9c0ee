"""cnnlib.models.feature_cache: per-image features equal the per-split path bit for bit, and are reused."""

from __future__ import annotations

import numpy as np

from cnnlib import config
from cnnlib.models import feature_cache, vgg19
from cnnlib.models.forward import FIXED_ROWS, compiled_forward

SIZE = 32


def _images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


def test_per_image_features_equal_the_per_split_path_and_are_reused(monkeypatch):
    base, info = vgg19.load_base({vgg19.ENV_VAR: "random"}, image_size=SIZE)
    first = {"train": (_images(21, 0), np.zeros(21, np.int32)), "val": (_images(5, 1), np.zeros(5, np.int32))}
    # the per-split path of before: each split in batches of 16, in order (the default is now 8)
    reference = {s: vgg19.extract_features(base, x, batch_size=16) for s, (x, _) in first.items()}
    got = vgg19.cached_features(base, info, first)
    for split in first:
        assert got[split][0].dtype == np.float32
        np.testing.assert_array_equal(got[split][0], reference[split])  # bit-identical

    # another "split": some images seen before (in other roles and batch positions), some new
    mixed = np.concatenate([first["val"][0][::-1], _images(3, 2), first["train"][0][7:12]])
    calls = []
    forward = compiled_forward(base)
    monkeypatch.setattr(vgg19, "compiled_forward", lambda model: lambda b: calls.append(len(b)) or forward(b))
    again = vgg19.cached_features(base, info, {"test": (mixed, np.zeros(len(mixed), np.int32))})
    assert calls == [FIXED_ROWS]  # only the 3 new images went through the network, in one (padded) batch
    np.testing.assert_array_equal(again["test"][0], vgg19.extract_features(base, mixed))


def test_digest_depends_on_pixels_and_shape_and_corrupt_files_are_recomputed():
    a = _images(1, 0)[0]
    b = a.copy()
    b[0, 0, 0] ^= 1
    assert feature_cache.image_digest(a) != feature_cache.image_digest(b)
    assert feature_cache.image_digest(a) != feature_cache.image_digest(a.reshape(SIZE * 2, SIZE // 2, 3))
    calls = []

    def forward(batch):
        calls.append(len(batch))
        return batch.reshape(len(batch), -1)[:, :4].astype(np.float32)

    identity = feature_cache.identity_key("cnnlib.models.forward", test="toy")
    images = _images(5, 3)
    first, computed = feature_cache.cached_image_features(forward, identity, images, (4,), batch_size=2)
    assert computed == 5 and calls == [FIXED_ROWS] * 3  # chunks of 2, 2, 1, each padded to the fixed rows
    (victim,) = config.cache_dir().glob(f"features/{identity}/*/{feature_cache.image_digest(images[3])}.npy")
    victim.write_bytes(b"garbage")
    second, computed = feature_cache.cached_image_features(forward, identity, images, (4,), batch_size=2)
    assert computed == 1
    np.testing.assert_array_equal(first, second)
    assert not list(config.cache_dir().rglob("*.tmp*"))  # atomic writes leave no temporaries
