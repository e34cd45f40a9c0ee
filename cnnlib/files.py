"""File helpers shared by every module: digests and atomic writes with clear errors."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class OutputNotWritable(RuntimeError):
    """An output file (figure, results, cache, manifest) cannot be written; the message says where."""


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


def atomic_write_bytes(path: Path, payload: bytes) -> Path:
    """Write to a temporary file beside ``path``, then rename: readers never see half a file.

    Raises ``OutputNotWritable`` naming the folder when it cannot be created or written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputNotWritable(
            f"Cannot write {path}: {exc.strerror or exc}. Make {path.parent} writable (or point the "
            "setting for this output elsewhere, e.g. CNNLIB_CACHE_DIR for caches)."
        ) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
