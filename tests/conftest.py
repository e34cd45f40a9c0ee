"""Shared fixtures: small synthetic image-folder datasets, built fresh in each test's tmp_path."""

from __future__ import annotations

import hashlib
import os
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
    """Hash of every entry's relative path (as bytes: any name), type, mode, and its bytes (files) or
    target (symlinks, never followed): proves a folder was not modified, moved into or deleted from."""
    digest = hashlib.sha256()
    root = os.fsencode(root)
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + names):
            path = os.path.join(folder, name)
            info = os.lstat(path)
            digest.update(os.path.relpath(path, root) + b"\0" + oct(info.st_mode).encode() + b"\0")
            if os.path.islink(path):
                digest.update(os.readlink(path))
            elif os.path.isfile(path):
                with open(path, "rb") as fh:
                    digest.update(fh.read())
    return digest.hexdigest()


@pytest.fixture(scope="session", autouse=True)
def _real_dataset_untouched():
    """With CALTECH101_DIR set (CI), the whole test run must leave that folder byte-identical."""
    folder = os.environ.get("CALTECH101_DIR", "").strip()
    if not folder or not os.path.isdir(folder):
        yield
        return
    before = tree_digest(Path(folder))
    yield
    assert tree_digest(Path(folder)) == before, f"the test run modified the dataset folder {folder}"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test caches under its own tmp folder and never sees the user's settings."""
    monkeypatch.setenv("CNNLIB_CACHE_DIR", str(tmp_path / "cache"))
    for name in (
        "CALTECH101_DIR",
        "CNNLIB_DATA_DIR",
        "CNNLIB_CLASSES",
        "CNNLIB_OUTPUT_DIR",
        "CNNLIB_SKIP_BAD_IMAGES",
        "CNNLIB_ALLOW_EXTRA_IMAGES",
        "CNNLIB_ANNOTATIONS_DIR",
    ):
        monkeypatch.delenv(name, raising=False)


def write_checksums(root: Path, path: Path) -> Path:
    """A ``sha256sum``-style list of every image under ``root``: makes its classes "reference classes"."""
    lines = [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(root).as_posix()}"
        for p in sorted(root.rglob("*.jpg"))
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def image_folder(tmp_path) -> Path:
    return make_dataset(tmp_path / "images")
