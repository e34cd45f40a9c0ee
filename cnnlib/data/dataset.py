"""List and verify the images of each class, and draw the split manifest.

Flow: ``locate.find_dataset`` (or ``locate.ensure_dataset``, which downloads when nothing is
found) -> ``images.check_images`` (official checksums and decoding, one bad-image
policy) -> ``make_split`` -> ``write_manifest`` (committed CSV); ``cnnlib.data.images`` then
decodes the manifest's images, comparing each with the manifest's SHA-256. Nothing
here ever writes into the dataset folder.

For the *reference classes* (those listed in ``data/caltech101_sha256.txt``) only the
official files are used: a missing or altered official file and a file that is not an
official one are "bad images" (``audit``); other classes (a user's own folders) are
only decoded.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cnnlib import config
from cnnlib.data.checksums import (  # noqa: F401 (re-exported: the data side's public names)
    ALLOW_EXTRA_ENV,
    SHA256_PATTERN,
    SKIP_ENV,
    DatasetError,
    audit,
    bad_images_error,
    official_checksums,
    read_checksums,
    shown,
    verify_checksums,
)
from cnnlib.data.locate import IMAGE_SUFFIXES
from cnnlib.store.files import atomic_write_bytes, file_digest, file_sha256  # noqa: F401 (re-exported)

MANIFEST_COLUMNS = ["path", "class", "split", "sha256"]


_warned: set[str] = set()


def warn_once(message: str, stacklevel: int = 3) -> None:
    """``warnings.warn`` a message only the first time this process sees it (the ignored-files list
    is found both when the images are checked and when the split is drawn)."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, stacklevel=stacklevel)


def allow_extra_requested(env: Mapping[str, str] | None = None) -> bool:
    """True when ``CNNLIB_ALLOW_EXTRA_IMAGES`` lets non-official images into reference classes."""
    return config.env_flag(ALLOW_EXTRA_ENV, env)


def _valid_name(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes, kept by Python as surrogates
        return False
    return True


def list_images(root: Path, classes: Sequence[str] = config.CLASSES) -> pd.DataFrame:
    """Image files of each class folder, sorted: columns ``path`` (relative, POSIX) and ``class``.

    Files with other suffixes, sub-folders, broken symlinks and symlinks that leave the
    dataset folder (never followed) are ignored and listed in one warning, issued once.
    A file name that is not valid UTF-8 is a ``DatasetError`` naming every such file.
    """
    root = Path(root)
    inside = root.resolve()
    rows, ignored, undecodable = [], [], []
    for cls in classes:
        folder = root / cls
        if not folder.is_dir():
            raise DatasetError(
                f"Class folder {shown(folder)} does not exist. Add it, or remove {cls!r} from the class list."
            )
        try:
            entries = sorted(folder.iterdir())
        except OSError as exc:
            raise DatasetError(
                f"Cannot list the class folder {shown(folder)}: {exc.strerror or exc}. Make it readable."
            ) from exc
        for entry in entries:
            if not _valid_name(entry.name):
                undecodable.append(entry)
                continue
            if entry.is_symlink():
                try:
                    target = entry.resolve(strict=True)
                except (OSError, RuntimeError):  # dangling link or loop
                    ignored.append(f"{entry} (broken symlink)")
                    continue
                if not target.is_relative_to(inside):
                    ignored.append(f"{entry} (symlink leaving the dataset folder, not followed)")
                    continue
            if entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES:
                rows.append({"path": f"{cls}/{entry.name}", "class": cls})
            else:
                ignored.append(str(entry))
    if undecodable:
        names = "\n  ".join(shown(e) for e in undecodable)
        raise DatasetError(
            f"{len(undecodable)} file name(s) under {shown(root)} are not valid UTF-8:\n  {names}\n"
            "Rename them (e.g. image_0100.jpg) or move them out of the dataset folder; the split "
            "manifest stores names as UTF-8 text."
        )
    if ignored:
        warn_once(f"Ignored {len(ignored)} non-image entries: {ignored}")
    return pd.DataFrame(rows, columns=["path", "class"])


def make_split(
    root: Path,
    classes: Sequence[str] = config.CLASSES,
    sizes: Mapping[str, int] = config.SPLIT_SIZES,
    seed: int = config.SEED,
    exclude: Collection[str] = (),
    checksums: Path | None = config.CHECKSUMS_FILE,
    allow_extra: bool | None = None,
) -> pd.DataFrame:
    """Stratified, seeded split: ``sizes[split]`` images per class, drawn without replacement.

    Images with identical content (same SHA-256) count once within a class (the first by
    path), so no picture can land in two splits; a picture found in two *classes* has no
    trustworthy label, so every copy is left out (warning). ``exclude`` lists relative
    paths to leave out (e.g. bad images skipped by ``images.check_images``). Every other
    image of a reference class must be an official, unaltered file (``audit``; ``allow_extra``
    None reads ``CNNLIB_ALLOW_EXTRA_IMAGES``), else ``DatasetError`` listing them all.
    Returns the manifest: columns path, class, split, sha256, sorted.
    """
    allow_extra = allow_extra_requested() if allow_extra is None else allow_extra
    excluded = set(exclude)
    images = list_images(root, classes)
    images = images[~images["path"].isin(excluded)].reset_index(drop=True)
    digests, unreadable = {}, []
    for rel in images["path"]:
        try:
            digests[rel] = file_sha256(Path(root) / rel)
        except OSError as exc:
            unreadable.append({"path": rel, "reason": f"cannot be read: {exc.strerror or exc}"})
    images = images[images["path"].isin(digests)].reset_index(drop=True)
    images["sha256"] = [digests[p] for p in images["path"]]
    official = official_checksums(classes, checksums)
    bad = unreadable + [
        b
        for b in audit(digests, classes, official, allow_extra)
        if b["path"] not in excluded and b["path"] not in {u["path"] for u in unreadable}
    ]
    if bad:
        raise bad_images_error(bad, root)
    checked = {p.split("/")[0] for p in official}
    extra = [p for p, c in zip(images["path"], images["class"]) if c in checked and p not in official]
    if extra:
        warn_once(
            f"{len(extra)} image(s) that are not official Caltech-101 files are used ({ALLOW_EXTRA_ENV}=1): {extra}"
        )
    classes_per_hash = images.groupby("sha256")["class"].transform("nunique")
    cross = classes_per_hash > 1
    if cross.any():
        warn_once(
            f"{int(cross.sum())} image(s) have the same content as an image of another class; the label is "
            f"ambiguous, so every copy is left out of the split: {images.loc[cross, 'path'].tolist()}"
        )
        images = images[~cross]
    duplicated = images["sha256"].duplicated(keep="first")
    if duplicated.any():
        warn_once(
            f"{int(duplicated.sum())} image(s) duplicate another by content and are left out of "
            f"the split: {images.loc[duplicated, 'path'].tolist()}"
        )
        images = images[~duplicated]
    need = sum(sizes.values())
    rng = np.random.default_rng(seed)
    parts = []
    for cls in classes:
        pool = images[images["class"] == cls].reset_index(drop=True)
        if len(pool) < need:
            raise DatasetError(
                f"Class {cls!r} in {shown(Path(root) / cls)} has {len(pool)} distinct images; the split "
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
    for value in manifest["path"]:
        if not _valid_name(str(value)):
            raise DatasetError(
                f"Cannot write {path}: the image name {shown(value)} is not valid UTF-8. Rename the file."
            )
    text = manifest[MANIFEST_COLUMNS].to_csv(index=False, lineterminator="\n")
    atomic_write_bytes(Path(path), text.encode("utf-8"))
    return Path(path)


def read_manifest(
    path: Path, classes: Sequence[str] | None = None, sizes: Mapping[str, int] | None = None
) -> pd.DataFrame:
    """Read a split manifest CSV and check it before anything trusts it.

    Checked: the columns; no empty cell; each path is ``<class>/<file>`` of its row's class;
    SHA-256 values are 64 hex digits; no path twice; no path or content in two splits
    (``check_disjoint``); with ``classes``, exactly those classes; with ``sizes``, exactly
    ``sizes[split]`` images per class and split (without, every class has the same counts).
    A hand-edited manifest (rows cut, an image copied into another split) is a ``DatasetError``.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"Split manifest {path} not found. Run notebooks/01_data_split.ipynb first.")
    fix = (
        "Regenerate it with notebooks/01_data_split.ipynb (or restore the committed one with "
        f"`git checkout {path.name}` in data/splits/)."
    )
    try:
        manifest = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, OSError, UnicodeDecodeError) as exc:  # pandas' ParserError is a ValueError
        raise DatasetError(f"Split manifest {path} cannot be read as CSV: {exc}. {fix}") from exc
    if list(manifest.columns) != MANIFEST_COLUMNS:
        raise DatasetError(f"{path} has columns {list(manifest.columns)}, expected {MANIFEST_COLUMNS}.")

    def fail(problem: str, row: int | None = None) -> DatasetError:
        where = f"{path}, line {row + 2}" if row is not None else str(path)
        return DatasetError(f"Split manifest {where}: {problem}. {fix}")

    if manifest.empty:
        raise fail("no rows")
    known = list(sizes) if sizes is not None else list(config.SPLITS)
    for row, (rel, cls, split, digest) in enumerate(manifest[MANIFEST_COLUMNS].itertuples(index=False)):
        if not (rel and cls and split and digest):
            raise fail("an empty cell", row)
        parts = rel.split("/")
        if len(parts) != 2 or parts[0] != cls or parts[1] in ("", ".", "..") or "\\" in rel:
            raise fail(f"path {rel!r} is not '<class>/<file>' of its class {cls!r}", row)
        if split not in known:
            raise fail(f"unknown split {split!r} (expected one of {known})", row)
        if not SHA256_PATTERN.match(digest):
            raise fail(f"{digest!r} is not a SHA-256 (64 lowercase hex digits)", row)
    repeated = manifest["path"][manifest["path"].duplicated()]
    if len(repeated):
        raise fail(f"{len(repeated)} path(s) listed more than once, e.g. {repeated.iloc[0]}")
    try:
        check_disjoint(manifest)
    except DatasetError as exc:
        raise fail(str(exc).removesuffix(" Regenerate the split manifest.")) from None
    present = sorted(manifest["class"].unique())
    if classes is not None and present != sorted(classes):
        raise fail(f"classes {present}, expected {sorted(classes)}")
    counts = pd.crosstab(manifest["class"], manifest["split"]).reindex(columns=known, fill_value=0)
    for cls, row_counts in counts.iterrows():
        got = {s: int(row_counts[s]) for s in known}
        wanted = dict(sizes) if sizes is not None else {s: int(counts[s].iloc[0]) for s in known}
        if got != wanted:
            raise fail(f"class {cls!r} has {got} images per split, expected {wanted} (rows cut or added?)")
    return manifest


def manifest_hash(path: Path) -> str:
    """SHA-256 of the manifest file: the split's identity in results and cache keys."""
    return file_sha256(Path(path))
