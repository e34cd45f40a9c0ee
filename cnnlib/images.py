"""Decode images once into uint8 arrays: robust to odd files, cached on disk.

``check_images`` finds every unreadable file before a split is drawn (the run stops with
the full list, or skips them when asked); ``load_split`` decodes a manifest's images into
(N, size, size, 3) arrays; ``load_project_split`` is the one call later notebooks make.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps, UnidentifiedImageError

from cnnlib import config
from cnnlib.data import DatasetError, ensure_dataset, list_images, manifest_hash, read_manifest
from cnnlib.files import atomic_write_bytes

RESIZE_METHOD = "PIL bilinear (antialiased), aspect ratio not kept (as the reference)"
SKIP_ENV = "CNNLIB_SKIP_BAD_IMAGES"
_DECODE_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def _open_reduced(path: Path, size: int) -> Image.Image:
    """Open ``path`` and, for JPEGs, let the decoder shrink by 1/2, 1/4 or 1/8 while staying >= ``size``.

    A 8000 x 6000 photo is then decoded at 1000 x 750: memory stays bounded.
    """
    img = Image.open(path)
    img.draft("RGB", (size, size))
    return img


def load_image(path: Path, size: int = config.IMAGE_SIZE) -> np.ndarray:
    """Decode one image to uint8 (size, size, 3) RGB.

    EXIF orientation is honoured; grayscale, palette, CMYK and 16-bit images are
    converted; transparent pixels are composited on white; large JPEGs are decoded
    at reduced scale so memory stays bounded.
    """
    try:
        with _open_reduced(path, size) as img:
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                img = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
            elif img.mode.startswith("I;16") or img.mode == "I":
                array16 = np.asarray(img, dtype=np.float64)
                img = Image.fromarray((array16 / max(array16.max(), 1) * 255).astype(np.uint8))
            img = img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except _DECODE_ERRORS as exc:
        raise DatasetError(
            f"Cannot read image {path}: {exc}. Replace or remove the file (the split manifest "
            "must then be regenerated)."
        ) from exc


def skip_requested() -> bool:
    """True when ``CNNLIB_SKIP_BAD_IMAGES`` asks to skip unreadable images (1/true/yes)."""
    return os.environ.get(SKIP_ENV, "").strip().lower() in ("1", "true", "yes")


def check_images(
    root: Path, classes: Sequence[str] = config.CLASSES, skip: bool | None = None, size: int = 32
) -> list[dict]:
    """Decode every image of ``classes`` once; return the unreadable ones skipped, or stop.

    By default (``skip`` None reads ``CNNLIB_SKIP_BAD_IMAGES``; unset means False) any
    unreadable file stops the run with a ``DatasetError`` listing every bad file. With
    ``skip`` they are returned as [{"path", "reason"}] so the caller can exclude them from
    the split and count them in the results.
    """
    skip = skip_requested() if skip is None else skip
    bad = []
    for rel in list_images(root, classes)["path"]:
        try:
            load_image(Path(root) / rel, size)
        except DatasetError as exc:
            bad.append({"path": rel, "reason": str(exc.__cause__ or exc)})
    if bad and not skip:
        listing = "\n  ".join(f"{b['path']}: {b['reason']}" for b in bad)
        raise DatasetError(
            f"{len(bad)} unreadable image(s) under {root}:\n  {listing}\nFix or remove them, or set "
            f"{SKIP_ENV}=1 to leave them out of the split (they are then counted in the results and the report)."
        )
    if bad:
        warnings.warn(f"Skipping {len(bad)} unreadable image(s): {[b['path'] for b in bad]}", stacklevel=2)
    return bad


def load_split(
    manifest: pd.DataFrame,
    root: Path,
    classes: Sequence[str] = config.CLASSES,
    size: int = config.IMAGE_SIZE,
    cache: bool = True,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Decode every manifest image once: {split: (x uint8 (N, size, size, 3), y int32 (N,))}.

    Labels index ``classes``. The decoded arrays are cached on disk, keyed by the
    manifest content and the image size; an unreadable cache file is rebuilt.
    """
    key = hashlib.sha256(
        (manifest.to_csv(index=False) + f"|{size}|{RESIZE_METHOD}|{list(classes)}").encode()
    ).hexdigest()[:16]
    cache_file = config.cache_dir() / f"images_{key}.npz"
    if cache and cache_file.is_file():
        try:
            with np.load(cache_file) as stored:
                return {s: (stored[f"x_{s}"], stored[f"y_{s}"]) for s in manifest["split"].unique()}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            cache_file.unlink(missing_ok=True)  # truncated or stale: rebuild below
    index = {c: i for i, c in enumerate(classes)}
    arrays = {}
    for split in manifest["split"].unique():
        rows = manifest[manifest["split"] == split]
        x = np.stack([load_image(Path(root) / p, size) for p in rows["path"]])
        y = np.array([index[c] for c in rows["class"]], dtype=np.int32)
        arrays[split] = (x, y)
    if cache:
        buffer = io.BytesIO()
        np.savez(buffer, **{f"{k}_{s}": v for s, xy in arrays.items() for k, v in zip("xy", xy)})
        atomic_write_bytes(cache_file, buffer.getvalue())
    return arrays


@dataclass(frozen=True)
class ProjectSplit:
    """What every notebook after the first needs: the images, the committed split, the arrays."""

    root: Path  # folder of class folders
    manifest: pd.DataFrame
    split_hash: str  # SHA-256 of the manifest file, the split's identity in caches and results
    arrays: dict[str, tuple[np.ndarray, np.ndarray]]  # {split: (uint8 images, labels)}

    def first_of_class(self, split: str, class_index: int) -> int:
        """Index in ``arrays[split]`` of the first image (manifest order) of a class."""
        labels = self.arrays[split][1]
        if not np.any(labels == class_index):
            raise DatasetError(f"No image of class {class_index} in split {split!r}.")
        return int(np.argmax(labels == class_index))

    def path_of(self, split: str, index: int) -> str:
        """Relative path of image ``index`` of ``split``."""
        return str(self.manifest[self.manifest["split"] == split]["path"].iloc[index])


def load_project_split(
    seed: int = config.SEED, classes: Sequence[str] = config.CLASSES, size: int = config.IMAGE_SIZE
) -> ProjectSplit:
    """Find the images, read the committed manifest ``data/splits/split_seed{seed}.csv``, load the arrays."""
    root = ensure_dataset(classes)
    path = config.SPLITS_DIR / f"split_seed{seed}.csv"
    manifest = read_manifest(path)
    return ProjectSplit(root, manifest, manifest_hash(path), load_split(manifest, root, classes, size))
