"""Locate and verify the images, and draw the split manifest.

Flow: ``find_dataset`` (or ``ensure_dataset``, which downloads when nothing is
found) -> ``verify_checksums`` -> ``make_split`` -> ``write_manifest`` (committed CSV);
``cnnlib.images`` then decodes the manifest's images. Nothing here ever writes into
the dataset folder.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cnnlib import config
from cnnlib.files import atomic_write_bytes, file_digest, file_sha256  # noqa: F401 (re-exported)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MANIFEST_COLUMNS = ["path", "class", "split", "sha256"]


class DatasetError(RuntimeError):
    """A problem with the user's images: the message says which path and what to do."""


# --------------------------------------------------------------------------- locate


def _class_root(folder: Path, classes: Sequence[str]) -> Path | None:
    """``folder`` or its ``101_ObjectCategories`` child, whichever holds all class folders."""
    for candidate in (folder, folder / "101_ObjectCategories"):
        if all((candidate / c).is_dir() for c in classes):
            return candidate
    return None


def find_dataset(
    classes: Sequence[str] = config.CLASSES,
    env: Mapping[str, str] | None = None,
    raw_dir: Path = config.RAW_DIR,
) -> Path | None:
    """Folder holding ``<class>/`` sub-folders: ``$CALTECH101_DIR`` first, then ``data/raw/``.

    Returns None when neither holds the images. Raises ``DatasetError`` when
    ``CALTECH101_DIR`` is set but wrong, since silently downloading instead would
    hide the user's mistake.
    """
    env = os.environ if env is None else env
    setting = env.get("CALTECH101_DIR", "").strip()
    if setting:
        folder = Path(setting).expanduser()
        if not folder.is_dir():
            raise DatasetError(
                f"CALTECH101_DIR={setting!r} is not a folder. Point it at a folder holding "
                f"one sub-folder per class ({', '.join(classes)}), or unset it to use data/raw/ "
                "or the automatic download."
            )
        root = _class_root(folder, classes)
        if root is None:
            missing = [c for c in classes if not (folder / c).is_dir()]
            raise DatasetError(
                f"CALTECH101_DIR={str(folder)!r} lacks the class folder(s) {missing}. Each class "
                f"needs a sub-folder of images (e.g. {folder / missing[0] / 'image_0001.jpg'}), "
                "either directly or under 101_ObjectCategories/."
            )
        return root
    return _class_root(Path(raw_dir), classes)


def ensure_dataset(
    classes: Sequence[str] = config.CLASSES, raw_dir: Path = config.RAW_DIR
) -> Path:
    """``find_dataset``, or download the official archive into ``raw_dir`` and return its folder."""
    root = find_dataset(classes, raw_dir=raw_dir)
    if root is not None:
        return root
    from cnnlib.download import download_caltech101  # only needed on a fresh machine

    return download_caltech101(raw_dir, classes=classes)


# --------------------------------------------------------------------------- checksums


def read_checksums(path: Path = config.CHECKSUMS_FILE) -> dict[str, str]:
    """``sha256sum`` file -> {relative path: hex digest}."""
    sums = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            digest, rel = line.split(maxsplit=1)
            sums[rel.strip().lstrip("*")] = digest
    return sums


def verify_checksums(
    root: Path, classes: Sequence[str] = config.CLASSES, checksums: Path = config.CHECKSUMS_FILE
) -> int:
    """Check every listed image of ``classes`` under ``root``; return how many were checked.

    Classes absent from the checksum file (a user's own data) are not checked.
    Raises ``DatasetError`` listing every missing or altered file.
    """
    expected = {p: d for p, d in read_checksums(checksums).items() if p.split("/")[0] in classes}
    problems = []
    for rel, digest in sorted(expected.items()):
        path = Path(root) / rel
        if not path.is_file():
            problems.append(f"missing: {path}")
        elif file_sha256(path) != digest:
            problems.append(f"content differs from the official file: {path}")
    if problems:
        shown = "\n  ".join(problems[:20])
        raise DatasetError(
            f"{len(problems)} image(s) under {root} do not match {checksums}:\n  {shown}\n"
            "Re-download the dataset (delete data/raw/ and rerun) or point CALTECH101_DIR at an "
            "unmodified copy of Caltech-101."
        )
    return len(expected)


# --------------------------------------------------------------------------- split


def list_images(root: Path, classes: Sequence[str] = config.CLASSES) -> pd.DataFrame:
    """Image files of each class folder, sorted: columns ``path`` (relative, POSIX) and ``class``.

    Files with other suffixes and sub-folders are ignored and listed in one warning.
    """
    root = Path(root)
    rows, ignored = [], []
    for cls in classes:
        folder = root / cls
        if not folder.is_dir():
            raise DatasetError(
                f"Class folder {folder} does not exist. Add it, or remove {cls!r} from the class list."
            )
        for entry in sorted(folder.iterdir()):
            if entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES:
                rows.append({"path": f"{cls}/{entry.name}", "class": cls})
            else:
                ignored.append(str(entry))
    if ignored:
        warnings.warn(f"Ignored {len(ignored)} non-image entries: {ignored[:10]}", stacklevel=2)
    return pd.DataFrame(rows, columns=["path", "class"])


def make_split(
    root: Path,
    classes: Sequence[str] = config.CLASSES,
    sizes: Mapping[str, int] = config.SPLIT_SIZES,
    seed: int = config.SEED,
    exclude: Collection[str] = (),
) -> pd.DataFrame:
    """Stratified, seeded split: ``sizes[split]`` images per class, drawn without replacement.

    Images with identical content (same SHA-256) count once, so no picture can land in
    two splits; ``exclude`` lists relative paths to leave out (e.g. unreadable images
    skipped by ``images.check_images``). Returns the manifest: columns path, class,
    split, sha256, sorted.
    """
    images = list_images(root, classes)
    images = images[~images["path"].isin(set(exclude))].reset_index(drop=True)
    images["sha256"] = [file_sha256(Path(root) / p) for p in images["path"]]
    duplicated = images["sha256"].duplicated(keep="first")
    if duplicated.any():
        warnings.warn(
            f"{int(duplicated.sum())} image(s) duplicate another by content and are left out of "
            f"the split: {images.loc[duplicated, 'path'].tolist()[:10]}",
            stacklevel=2,
        )
        images = images[~duplicated]
    need = sum(sizes.values())
    rng = np.random.default_rng(seed)
    parts = []
    for cls in classes:
        pool = images[images["class"] == cls].reset_index(drop=True)
        if len(pool) < need:
            raise DatasetError(
                f"Class {cls!r} in {Path(root) / cls} has {len(pool)} distinct images; the split "
                f"needs {need} ({dict(sizes)}). Add images or lower the split sizes."
            )
        order = rng.permutation(len(pool))
        start = 0
        for split, n in sizes.items():
            chosen = pool.iloc[order[start : start + n]].copy()
            chosen["split"] = split
            parts.append(chosen)
            start += n
    manifest = pd.concat(parts, ignore_index=True)[MANIFEST_COLUMNS]
    split_rank = {s: i for i, s in enumerate(sizes)}
    manifest = manifest.sort_values(
        ["split", "class", "path"], key=lambda col: col.map(split_rank) if col.name == "split" else col
    ).reset_index(drop=True)
    check_disjoint(manifest)
    return manifest


def check_disjoint(manifest: pd.DataFrame) -> None:
    """Raise ``DatasetError`` if a path or a content hash appears in more than one split."""
    for column in ("path", "sha256"):
        splits_per_value = manifest.groupby(column)["split"].nunique()
        leaked = splits_per_value[splits_per_value > 1]
        if len(leaked):
            raise DatasetError(
                f"Split leakage: {len(leaked)} {column} value(s) occur in more than one split, "
                f"e.g. {leaked.index[0]}. Regenerate the split manifest."
            )


def split_counts(manifest: pd.DataFrame) -> pd.DataFrame:
    """Table 1: images per class (rows) and split (columns), with totals."""
    table = pd.crosstab(manifest["class"], manifest["split"], margins=True, margins_name="total")
    columns = [s for s in config.SPLITS if s in table.columns] + ["total"]
    return table[columns]


def write_manifest(manifest: pd.DataFrame, path: Path) -> Path:
    """Write the manifest CSV atomically (LF line endings, so equal splits give equal bytes)."""
    text = manifest[MANIFEST_COLUMNS].to_csv(index=False, lineterminator="\n")
    atomic_write_bytes(Path(path), text.encode())
    return Path(path)


def read_manifest(path: Path) -> pd.DataFrame:
    """Read a split manifest CSV, checking its columns."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"Split manifest {path} not found. Run notebooks/01_data_split.ipynb first.")
    manifest = pd.read_csv(path, dtype=str)
    if list(manifest.columns) != MANIFEST_COLUMNS:
        raise DatasetError(f"{path} has columns {list(manifest.columns)}, expected {MANIFEST_COLUMNS}.")
    return manifest


def manifest_hash(path: Path) -> str:
    """SHA-256 of the manifest file: the split's identity in results and cache keys."""
    return file_sha256(Path(path))
