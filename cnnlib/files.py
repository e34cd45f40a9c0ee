"""File helpers shared by every module: digests and atomic writes with clear errors.

Every output (results, figures, caches, trained models, downloads) is written by
``atomic_write``: the bytes go to a temporary file with a unique name beside the
target, and the final rename is the only step another process can see. Two runs
writing the same file at once both succeed, and a run killed half-way leaves only
a temporary file, which no run ever reads and which ``sweep_stale_temporaries``
removes later. Any ``OSError`` (folder not writable, disk full) becomes
``OutputNotWritable`` naming the file.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# Names of this project's temporary files and folders: ".<target name>.<random>.tmp[.ext]" or ".part".
TEMP_NAME = re.compile(r"^\..+\.(tmp|part)(\.[A-Za-z0-9]+)?$")
PROCESS_START = time.time()
# A temporary file last modified this long before this process started belongs to a finished or
# killed run: a live writer (another process started just before this one) touches its file more often.
STALE_GRACE_S = 600.0
_swept: set[Path] = set()


class OutputNotWritable(RuntimeError):
    """An output file (figure, results, cache, manifest) cannot be written; the message says where."""


def not_writable(path: Path, exc: OSError) -> OutputNotWritable:
    """The one message for a failed write: which file, why, what to do."""
    return OutputNotWritable(
        f"Cannot write {path}: {exc.strerror or exc}. Make {Path(path).parent} writable and check the "
        "free disk space (or point the setting for this output elsewhere, e.g. CNNLIB_CACHE_DIR for caches)."
    )


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (any ``hashlib`` algorithm), read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return file_digest(path, "sha256")


def sweep_stale_temporaries(folder: Path, older_than: float | None = None) -> list[Path]:
    """Remove this project's temporary files (and folders) in ``folder`` left by earlier, killed runs.

    Only names of the form ``.<name>.<random>.tmp[.ext]`` / ``.part`` whose modification time is
    before ``older_than`` (default: ``STALE_GRACE_S`` before this process started) are removed, so
    a temporary file another running process is writing right now is left alone. Returns what
    was removed.
    """
    cutoff = PROCESS_START - STALE_GRACE_S if older_than is None else older_than
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        try:
            if not TEMP_NAME.match(entry.name) or entry.lstat().st_mtime >= cutoff:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except OSError:
            continue  # another run removed it first, or it is not ours to remove
    return removed


def sweep_once(folder: Path) -> None:
    """``sweep_stale_temporaries(folder)`` the first time this process uses ``folder`` (cheap after that)."""
    folder = Path(folder)
    if folder not in _swept:
        _swept.add(folder)
        sweep_stale_temporaries(folder)


def atomic_write(path: Path, write: Callable[[Path], object], suffix: str = ".tmp") -> Path:
    """Call ``write(temporary_path)``, then rename the temporary file to ``path``.

    The temporary name is unique (``mkstemp``) and keeps ``path``'s extension, so writers
    that insist on one (``keras.Model.save`` wants ``.keras``) work. On any failure the
    temporary file is removed; an ``OSError`` becomes ``OutputNotWritable`` naming ``path``.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_once(path.parent)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix + path.suffix)
        tmp = Path(name)
        os.close(fd)
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise not_writable(path, exc) from exc
    finally:
        if tmp is not None:
            try:
                tmp.unlink(missing_ok=True)  # gone already after a successful rename
            except OSError:
                pass  # swept by a later run
    return path


def atomic_write_bytes(path: Path, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` atomically (see ``atomic_write``)."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(payload))
