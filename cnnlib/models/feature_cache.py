"""Per-image cache of a frozen network's features: computed once per image, reused by every split.

A feature file is keyed by (the decoded image's content, the network's identity): the identity
names the weights, the preprocessing, the layer, the input size, the dtype policy and the Keras
version (``identity_key``); the image's key is the SHA-256 of its decoded uint8 pixels and shape
(``image_digest``), so the same picture in another split, another class list or another split
seed is found again, and a different resize or decoder gives a different key.

Layout: ``<cache_dir>/features/<identity>/<digest[:2]>/<digest>.npy``, each written atomically with the SHA-256
of its bytes (``files.write_checked``). A file that fails the check (removed with a warning naming it), cannot be
read or has the wrong shape is recomputed.

Bit-identity: on this CPU (and TensorFlow 2.21/oneDNN) a VGG19 forward pass gives each image
the same float32 bits whatever else is in its batch and whatever the batch size (1, 4, 8, 12, 16
checked; ``tests/models/test_feature_cache.py`` proves it on every run), so images still missing are
extracted in batches of ``batch_size`` in their given order, exactly as the per-split path did.
Batches of 8 by default: at 224 px they take about 0.3 GB less peak memory than 16, at the same speed.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable

import numpy as np
from tqdm import tqdm

from cnnlib import arithmetic, config
from cnnlib.backend import keras
from cnnlib.models.forward import in_fixed_batches
from cnnlib.store.files import read_checked, sweep_once, write_checked
from cnnlib.store.memo import code_closure_digest, image_digest, weights_digest  # noqa: F401  (re-exported)


def identity_key(code: str, **identity: object) -> str:
    """Short stable key of a feature extractor's identity (weights, preprocessing, layer, size, ...).

    Args:
        code: the module that computes the features (e.g. ``"cnnlib.models.vgg19"``): the key covers its code and
            that of every ``cnnlib`` module it imports (``memo.code_closure_digest``), so a changed
            preprocessing or forward pass never reuses old features.
        identity: everything else that decides them; the Keras and TensorFlow versions, the dtype policy and
            the arithmetic are added here.
    Returns:
        16 hex characters.
    """
    from cnnlib import backend

    identity = {
        **identity,
        "code": code_closure_digest(code, "cnnlib.models.feature_cache"),
        **backend.versions(),
        "keras": keras.__version__,
        "policy": keras.config.dtype_policy().name,
        "arithmetic": arithmetic.describe(),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _read(path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The stored features, or None (missing; damaged: removed with a warning; another shape or dtype)."""
    payload = read_checked(path)
    if payload is None:
        return None
    try:
        value = np.load(io.BytesIO(payload), allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if value.shape != shape or value.dtype != np.float32:
        return None
    return value


def _npy_bytes(value: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, value, allow_pickle=False)
    return buffer.getvalue()


def cached_image_features(
    forward: Callable[[np.ndarray], np.ndarray],
    identity: str,
    images: np.ndarray,
    feature_shape: tuple[int, ...],
    batch_size: int = 8,
    desc: str = "features",
) -> tuple[np.ndarray, int]:
    """Features of every image, computing only those not in the cache.

    ``forward`` maps a uint8 batch (n, H, W, 3) to float32 features (n, *feature_shape);
    ``identity`` comes from ``identity_key``. ``images`` may be a memory map: it is read one
    image at a time. Returns (features float32 (N, *feature_shape), number computed now).
    """
    folder = config.cache_dir() / "features" / identity
    sweep_once(folder)
    digests = [image_digest(images[i]) for i in range(len(images))]
    out = np.empty((len(images), *feature_shape), dtype=np.float32)
    missing = []
    for i, digest in enumerate(digests):
        value = _read(folder / digest[:2] / f"{digest}.npy", tuple(feature_shape))
        if value is None:
            missing.append(i)
        else:
            out[i] = value
    starts = range(0, len(missing), batch_size)
    for start in tqdm(starts, desc=desc, leave=False, disable=None if len(starts) > 1 else True):
        chunk = missing[start : start + batch_size]
        batch = np.asarray(in_fixed_batches(forward, np.stack([images[i] for i in chunk])), dtype=np.float32)
        if batch.shape != (len(chunk), *feature_shape):
            raise ValueError(
                f"The feature extractor returned shape {batch.shape}; expected "
                f"{(len(chunk), *feature_shape)} (check the identity's layer and input size)."
            )
        for i, value in zip(chunk, batch):
            out[i] = value
            path = folder / digests[i][:2] / f"{digests[i]}.npy"
            write_checked(path, _npy_bytes(value))
    return out, len(missing)
