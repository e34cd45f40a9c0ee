"""Shared fixtures: small synthetic image-folder datasets, built fresh in each test's tmp_path."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def make_dataset(root: Path, classes=("alpha", "beta", "gamma"), per_class: int = 8, seed: int = 0) -> Path:
    """Write ``per_class`` distinct random JPEGs per class under ``root/<class>/image_XXXX.jpg``."""
    rng = np.random.default_rng(seed)
    for c_index, cls in enumerate(classes):
        folder = root / cls
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            height, width = rng.integers(40, 90, size=2)
            pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
            pixels[..., c_index % 3] = 255 - 30 * c_index  # a class-dependent colour cue
            Image.fromarray(pixels).save(folder / f"image_{i + 1:04d}.jpg", quality=90)
    return root


def tree_digest(root: Path) -> str:
    """Hash of every file's relative path and bytes: proves a folder was not modified."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test caches under its own tmp folder and never sees the user's CALTECH101_DIR."""
    monkeypatch.setenv("CNNLIB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CALTECH101_DIR", raising=False)


@pytest.fixture
def dataset(tmp_path) -> Path:
    return make_dataset(tmp_path / "images")
