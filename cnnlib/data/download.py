"""Download the official Caltech-101 archive, verify it, and extract only the needed classes.

The archive is a zip holding ``caltech-101/101_ObjectCategories.tar.gz``. Each
step is checked: zip SHA-256, inner tar MD5, safe extraction (no member may leave
the target folder), then every extracted image against the committed per-image
SHA-256 list. A failed or interrupted download leaves no file a later run trusts.
"""

from __future__ import annotations

import difflib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from cnnlib import config
from cnnlib.data.checksums import DatasetError, verify_checksums
from cnnlib.store.files import file_digest, not_writable, sweep_stale_temporaries, temporary_file


def fetch(url: str, dest: Path, sha256: str | None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` with a progress bar; verify SHA-256; rename atomically.

    The bytes go to a temporary file with a unique name beside ``dest``; it is removed on
    any failure, so ``dest`` exists only when complete and verified. Temporary files of
    earlier, killed runs are swept first. A local write failure (folder not writable,
    disk full) is ``OutputNotWritable``; a network failure is ``DatasetError``.
    """
    dest = Path(dest)
    tmp = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale_temporaries(dest.parent)
        fd, tmp = temporary_file(dest.parent, dest.name, ".part")
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            received = 0
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {dest.name}") as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    try:
                        out.write(block)
                    except OSError as exc:  # disk full: not a network problem
                        raise not_writable(dest, exc) from exc
                    received += len(block)
                    bar.update(len(block))
            if total is not None and received != total:
                raise http.client.IncompleteRead(b"", total - received)  # connection cut off
        if sha256 is not None and (got := file_digest(tmp, "sha256")) != sha256:
            raise DatasetError(
                f"Checksum mismatch for {url}: SHA-256 {got}, expected {sha256}. The partial file "
                "was removed; retry, or download the archive by hand into data/raw/."
            )
        os.replace(tmp, dest)
    except (OSError, http.client.HTTPException) as exc:  # network errors, cut-off transfers
        if tmp is None:  # the folder could not be created or written
            raise not_writable(dest, exc) from exc
        raise DatasetError(
            f"Download of {url} to {dest} failed ({exc}). Check the network, or download the archive by "
            f"hand and set CALTECH101_DIR to its extracted 101_ObjectCategories folder."
        ) from exc
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return dest


def _refuse_unknown_classes(tar_path: Path, classes: Sequence[str], everything, members) -> None:
    """A ``DatasetError`` naming every requested class the archive lacks and its nearest names there
    (a typo in ``CNNLIB_CLASSES``), raised before anything is extracted or installed."""
    found = {m.name.lstrip("./").split("/")[1] for m in members if m.name.lstrip("./").count("/") >= 2}
    missing = [c for c in classes if c not in found]
    if not missing:
        return
    known = sorted({parts[1] for m in everything if len(parts := m.name.lstrip("./").split("/")) >= 3 and parts[1]})
    hints = "; ".join(
        f"{c!r} (nearest: {', '.join(difflib.get_close_matches(c, known, n=3, cutoff=0.5)) or 'none'})" for c in missing
    )
    raise DatasetError(
        f"{tar_path} has no class folder for {len(missing)} of the {len(classes)} requested classes: {hints}. "
        f"Check CNNLIB_CLASSES (the archive has {len(known)} classes); nothing was installed."
    )


def extract_classes(tar_path: Path, target: Path, classes: Sequence[str]) -> Path:
    """Extract ``101_ObjectCategories/<class>/*`` for ``classes`` into ``target``; return the class root.

    Uses tarfile's ``data`` filter: absolute paths, ``..`` and links leaving the
    target are refused with ``DatasetError``; a damaged archive is a ``DatasetError`` too.
    """
    prefixes = tuple(f"101_ObjectCategories/{c}/" for c in classes)
    try:
        with tarfile.open(tar_path, "r:*") as archive:
            everything = archive.getmembers()
            members = [m for m in everything if m.name.lstrip("./").startswith(prefixes)]
            _refuse_unknown_classes(tar_path, classes, everything, members)
            try:
                archive.extractall(target, members=members, filter="data")
            except tarfile.FilterError as exc:
                raise DatasetError(f"Refused unsafe archive member in {tar_path}: {exc}") from exc
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise DatasetError(
            f"{tar_path} is not a readable .tar.gz archive ({exc}); delete data/raw/ and rerun to download it again."
        ) from exc
    return Path(target) / "101_ObjectCategories"


def download_caltech101(
    raw_dir: Path = config.RAW_DIR,
    classes: Sequence[str] = config.CLASSES,
    url: str = config.CALTECH101_URL,
    zip_sha256: str | None = config.CALTECH101_ZIP_SHA256,
    tar_member: str = config.CALTECH101_TAR_MEMBER,
    tar_md5: str | None = config.CALTECH101_TAR_MD5,
    checksums: Path | None = config.CHECKSUMS_FILE,
) -> Path:
    """Fetch the official archive into ``raw_dir`` and return the folder of class folders.

    A ``caltech-101.zip`` already in ``raw_dir`` is re-verified (SHA-256) every time it is
    used; if it differs, the run stops and says to delete it (it is never trusted, never
    silently replaced).
    """
    raw_dir = Path(raw_dir)
    zip_path = raw_dir / "caltech-101.zip"
    if zip_path.is_file():
        if zip_sha256 is not None and (got := file_digest(zip_path, "sha256")) != zip_sha256:
            raise DatasetError(
                f"{zip_path} is not the official archive (SHA-256 {got}, expected {zip_sha256}); it may be "
                "an incomplete or altered copy. Delete it and rerun to download it again."
            )
    else:
        fetch(url, zip_path, zip_sha256)
    try:
        sweep_stale_temporaries(raw_dir)  # scratch folders of killed runs
        scratch_dir = tempfile.TemporaryDirectory(dir=raw_dir, prefix=".caltech-101.", suffix=".tmp")
    except OSError as exc:
        raise not_writable(raw_dir / "101_ObjectCategories", exc) from exc
    with scratch_dir as scratch:
        try:
            with zipfile.ZipFile(zip_path) as archive:
                if tar_member not in archive.namelist():
                    raise DatasetError(f"{zip_path} has no member {tar_member}; is it the Caltech-101 zip?")
                tar_path = Path(archive.extract(tar_member, scratch))
        except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
            raise DatasetError(
                f"{zip_path} is not a readable zip archive ({exc}). Delete it and rerun to download it again."
            ) from exc
        if tar_md5 is not None and (got := file_digest(tar_path, "md5")) != tar_md5:
            raise DatasetError(f"{tar_member} in {zip_path} has MD5 {got}, expected {tar_md5}.")
        staged = extract_classes(tar_path, Path(scratch) / "out", classes)
        if checksums is not None:
            verify_checksums(staged, classes, checksums)
        final = raw_dir / "101_ObjectCategories"
        try:
            final.mkdir(parents=True, exist_ok=True)
            for cls in classes:
                if (final / cls).exists():
                    shutil.rmtree(final / cls)
                os.replace(staged / cls, final / cls)
        except OSError as exc:
            raise not_writable(final, exc) from exc
    return final
