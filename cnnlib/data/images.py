"""Decode images once into uint8 arrays: robust to odd files, verified, cached on disk.

``check_images`` finds every bad file before a split is drawn: official files missing or
altered, files that are not official ones, and unreadable files, all under one policy (the
run stops with the full list, or skips and counts them when asked); ``load_split``
decodes a manifest's images into (N, size, size, 3) arrays, comparing each file with the
manifest's SHA-256 first; ``load_project_split`` is the one call later notebooks make.
"""

from __future__ import annotations

import hashlib
import io
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps, UnidentifiedImageError

from cnnlib import config
from cnnlib.data.dataset import (
    SKIP_ENV,  # noqa: F401 (re-exported: images.SKIP_ENV is the documented name)
    DatasetError,
    allow_extra_requested,
    audit,
    bad_images_error,
    list_images,
    manifest_hash,
    official_checksums,
    read_manifest,
    shown,
)
from cnnlib.data.locate import ensure_dataset
from cnnlib.store.files import CacheEntryDamaged, atomic_write_bytes, sweep_once

RESIZE_METHOD = "PIL bilinear (antialiased), aspect ratio not kept (as the reference)"
# Memory bound for decoding: images with more pixels (after the JPEG decoder's own reduction) are
# refused. 30 megapixels is about 90 MiB as 8-bit RGB; a 12000 x 12000 PNG (144 MP) is refused.
MAX_PIXELS = 30_000_000
MAX_FILE_BYTES = 256 << 20  # no image of this project is near this; a larger file is not read
_DECODE_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def _open_reduced(source, size: int) -> Image.Image:
    """Open ``source`` (path or file object) and, for JPEGs, let the decoder shrink by 1/2, 1/4 or
    1/8 while staying >= ``size``; refuse (``ValueError``) more than ``MAX_PIXELS`` pixels.

    A 8000 x 6000 photo is then decoded at 1000 x 750: memory stays bounded. Only the
    header has been read when the pixel count is checked.
    """
    img = Image.open(source)
    img.draft("RGB", (size, size))
    width, height = img.size
    if width * height > MAX_PIXELS:
        img.close()
        raise ValueError(
            f"{width} x {height} pixels is more than the decoding limit of {MAX_PIXELS:,} pixels "
            "(memory bound); save a smaller copy (e.g. at most 4000 x 4000)"
        )
    return img


def _to_8bit(img: Image.Image, source_format: str | None) -> Image.Image:
    """16-bit and float grayscale -> 8-bit, scaled by the type's range (not by the image's own maximum).

    ``I;16*``: 0..65535 -> 0..255; ``I`` (32-bit integer) only when the format stores at most 16 bits
    (PNG, PPM); ``F`` only with every value in 0..1 (a float image's range). Anything else has no
    faithful 8-bit version: ``ValueError``.
    """
    if img.mode.startswith("I;16") or img.mode == "I":
        values = np.asarray(img).astype(np.int64)
        if img.mode == "I" and source_format not in ("PNG", "PPM"):
            raise ValueError(
                f"a 32-bit integer {source_format} image has no defined 8-bit scale; save it as 8-bit (or 16-bit) first"
            )
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError("integer pixel values outside 0..65535; save the image as 8-bit first")
        return Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8))
    if img.mode == "F":
        values = np.asarray(img, dtype=np.float64)
        if not np.all(np.isfinite(values)) or values.min(initial=0) < 0 or values.max(initial=0) > 1:
            raise ValueError(
                "a floating-point image must hold values in 0..1 (its range); this one does "
                "not, so it has no faithful 8-bit version: save it as 8-bit first"
            )
        return Image.fromarray(np.round(values * 255).astype(np.uint8))
    return img


def load_image(path: Path, size: int = config.IMAGE_SIZE, payload: bytes | None = None) -> np.ndarray:
    """Decode one image to uint8 (size, size, 3) RGB (from ``payload``, the file's bytes, when given).

    EXIF orientation is honoured; grayscale, palette, CMYK, 16-bit and float images are
    converted (scaled by their type's range); transparent pixels are composited on white;
    large JPEGs are decoded at reduced scale and anything above ``MAX_PIXELS`` is refused, so
    memory stays bounded. Any failure is a ``DatasetError`` naming the file.
    """
    try:
        with _open_reduced(io.BytesIO(payload) if payload is not None else path, size) as opened:
            source_format = opened.format
            img = ImageOps.exif_transpose(opened)
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                img = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
            else:
                img = _to_8bit(img, source_format)
            img = img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except _DECODE_ERRORS as exc:
        raise DatasetError(
            f"Cannot read image {shown(path)}: {exc}. Replace or remove the file (the split manifest "
            "must then be regenerated)."
        ) from exc


def skip_requested(env: Mapping[str, str] | None = None) -> bool:
    """True when ``CNNLIB_SKIP_BAD_IMAGES`` asks to skip bad images (1/true/yes; 0/false/no or unset:
    no; any other value is a ``config.SettingError``)."""
    return config.env_flag(SKIP_ENV, env)


def _read(path: Path) -> bytes:
    """A file's bytes, refusing (``OSError``) files too large to be an image of this project."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise OSError(f"file is larger than {MAX_FILE_BYTES >> 20} MiB")
    return path.read_bytes()


@dataclass(frozen=True)
class ImageCheck:
    """What ``check_images`` found: official files verified, bad files skipped, extra files used."""

    verified: int  # official files present, unaltered and readable
    skipped: list[dict] = field(default_factory=list)  # [{"path", "reason"}]: leave out of the split
    extra: list[str] = field(default_factory=list)  # non-official images used (CNNLIB_ALLOW_EXTRA_IMAGES=1)

    @property
    def exclude(self) -> list[str]:
        """Paths to pass to ``dataset.make_split(exclude=...)``."""
        return [s["path"] for s in self.skipped]


def check_images(
    root: Path,
    classes: Sequence[str] = config.CLASSES,
    skip: bool | None = None,
    size: int = 32,
    checksums: Path | None = config.CHECKSUMS_FILE,
    allow_extra: bool | None = None,
) -> ImageCheck:
    """Check every image of ``classes`` once, against the official checksums and by decoding it.

    The one bad-image policy: an official file that is missing or altered, a file that is not
    an official one (in a class the checksum list covers, unless ``allow_extra``; None reads
    ``CNNLIB_ALLOW_EXTRA_IMAGES``) and an unreadable file are all "bad". By default (``skip``
    None reads ``CNNLIB_SKIP_BAD_IMAGES``; unset means False) any bad file stops the run with a
    ``DatasetError`` listing every one; with ``skip`` they are returned in ``skipped`` so the
    caller can exclude them from the split and count them in the results.
    """
    skip = skip_requested() if skip is None else skip
    allow_extra = allow_extra_requested() if allow_extra is None else allow_extra
    root = Path(root)
    official = official_checksums(classes, checksums)
    found, reasons = {}, {}
    for rel in list_images(root, classes)["path"]:
        try:
            payload = _read(root / rel)
        except OSError as exc:
            reasons.setdefault(rel, []).append(f"cannot be read: {exc.strerror or exc}")
            continue
        found[rel] = hashlib.sha256(payload).hexdigest()
        try:
            load_image(root / rel, size, payload)
        except DatasetError as exc:
            reasons.setdefault(rel, []).append(str(exc.__cause__ or exc))
    for problem in audit(found, classes, official, allow_extra):
        reasons.setdefault(problem["path"], []).insert(0, problem["reason"])
    bad = [{"path": rel, "reason": "; ".join(reasons[rel])} for rel in sorted(reasons)]
    if bad and not skip:
        raise bad_images_error(bad, root)
    if bad:
        warnings.warn(
            f"Skipping {len(bad)} bad image(s) ({SKIP_ENV}=1): {[(b['path'], b['reason']) for b in bad]}", stacklevel=2
        )
    checked = {p.split("/")[0] for p in official}
    extra = sorted(rel for rel in found if rel.split("/")[0] in checked and rel not in official and rel not in reasons)
    return ImageCheck(verified=sum(1 for rel in official if rel not in reasons), skipped=bad, extra=extra)


def decoder_identity() -> str:
    """What decides decoded pixels besides the files: the decoding code (this module and every ``cnnlib`` module
    it imports) and the NumPy and Pillow versions. Part of every decoded-image cache key, so a cache written by
    other decoding code (e.g. an earlier version's 16-bit scaling) is never read back."""
    import PIL

    from cnnlib.store.memo import code_closure_digest

    return f"{code_closure_digest('cnnlib.data.images')}|numpy {np.__version__}|pillow {PIL.__version__}"


def _cache_key(manifest: pd.DataFrame, size: int, classes: Sequence[str]) -> str:
    text = manifest.to_csv(index=False) + f"|{size}|{RESIZE_METHOD}|{list(classes)}|{decoder_identity()}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def load_split(
    manifest: pd.DataFrame,
    root: Path,
    classes: Sequence[str] = config.CLASSES,
    size: int = config.IMAGE_SIZE,
    cache: bool = True,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Decode every manifest image once: {split: (x uint8 (N, size, size, 3), y int32 (N,))}.

    Labels index ``classes``. Each file is compared with the manifest's ``sha256`` before it
    is decoded: a file changed (or removed) since the split was drawn is a ``DatasetError``
    listing every such file. The decoded arrays are cached on disk, keyed by the manifest
    content, the image size and the decoder (``decoder_identity``); an unreadable cache file (its zip
    CRC-32 checks catch changed or truncated bytes) is rebuilt.
    """
    if "sha256" not in manifest.columns:
        raise DatasetError(
            "The split manifest has no sha256 column, so its images cannot be verified; "
            "regenerate it with notebooks/01_data_split.ipynb."
        )
    cache_file = config.cache_dir() / f"images_{_cache_key(manifest, size, classes)}.npz"
    if cache:
        sweep_once(cache_file.parent)  # temporaries left by killed runs (never read, only removed)
    if cache and cache_file.is_file():
        try:
            with np.load(cache_file) as stored:
                return {s: (stored[f"x_{s}"], stored[f"y_{s}"]) for s in manifest["split"].unique()}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # CRC-32, truncation, ...
            warnings.warn(
                f"Decoded-image cache {cache_file} cannot be read ({type(exc).__name__}: {exc}): decoding again.",
                CacheEntryDamaged,
                stacklevel=2,
            )
            cache_file.unlink(missing_ok=True)
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(manifest["class"]) - set(index))
    if unknown:
        raise DatasetError(f"The split manifest has classes {unknown} that are not in {list(classes)}.")
    arrays, changed = {}, []
    for split in manifest["split"].unique():
        rows = manifest[manifest["split"] == split]
        decoded = []
        for rel, digest in zip(rows["path"], rows["sha256"]):
            path = Path(root) / rel
            try:
                payload = _read(path)
            except OSError as exc:
                changed.append(f"{shown(path)}: cannot be read ({exc.strerror or exc})")
                continue
            if (got := hashlib.sha256(payload).hexdigest()) != digest:
                changed.append(f"{shown(path)}: SHA-256 {got}, the manifest says {digest}")
                continue
            decoded.append(load_image(path, size, payload))
        if not changed:
            arrays[split] = (np.stack(decoded), np.array([index[c] for c in rows["class"]], dtype=np.int32))
    if changed:
        listing = "\n  ".join(changed)
        raise DatasetError(
            f"{len(changed)} image(s) differ from the split manifest (changed or removed after the split was "
            f"drawn):\n  {listing}\nRestore the original files (e.g. re-download the dataset), or regenerate "
            "the split with notebooks/01_data_split.ipynb (every result then changes)."
        )
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
    seed: int = config.SEED,
    classes: Sequence[str] = config.CLASSES,
    size: int = config.IMAGE_SIZE,
    sizes: Mapping[str, int] | None = config.SPLIT_SIZES,
    manifest: Path | None = None,
) -> ProjectSplit:
    """Find the images, read (and check) the split manifest (default: the committed
    ``data/splits/split_seed{seed}.csv``), load the arrays (each image verified against the
    manifest's SHA-256 when the cache is built)."""
    root = ensure_dataset(classes)
    path = Path(manifest) if manifest is not None else config.SPLITS_DIR / f"split_seed{seed}.csv"
    if not path.is_file():
        raise DatasetError(
            f"Split manifest {path} not found for the classes {list(classes)}: run notebooks/01_data_split.ipynb "
            "first (with the same CNNLIB_CLASSES), or `make report`."
        )
    manifest = read_manifest(path, classes, sizes)
    return ProjectSplit(root, manifest, manifest_hash(path), load_split(manifest, root, classes, size))


def class_counts(labels: np.ndarray, n_classes: int) -> list[int]:
    """Images per class index 0..n_classes-1 (zeros included), as plain ints."""
    return np.bincount(np.asarray(labels), minlength=n_classes).tolist()
