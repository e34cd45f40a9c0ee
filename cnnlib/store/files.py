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

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
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


def umask_mode() -> int:
    """The permission bits a new regular file gets under the current umask (typically 0o644).

    ``tempfile.mkstemp`` creates its file with mode 0o600 whatever the umask; a file renamed from it
    must be given this mode, or nobody else on a shared machine (nor a web server) can read it."""
    try:  # Linux says it without changing it (no window in which another thread creates a file)
        status = Path("/proc/self/status").read_text()
        mask = int(re.search(r"^Umask:\s*([0-7]+)", status, re.MULTILINE).group(1), 8)
    except (OSError, AttributeError):
        mask = os.umask(0o022)  # elsewhere reading the umask means setting it: set it back at once
        os.umask(mask)
    return 0o666 & ~mask


def temporary_file(folder: Path, name: str, suffix: str) -> tuple[int, Path]:
    """``mkstemp`` beside ``folder/name`` (a hidden, unique name keeping ``suffix``), with the mode
    the umask gives a normal file (``umask_mode``). Returns the open descriptor and the path."""
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=suffix)
    try:
        os.fchmod(fd, umask_mode())
    except OSError:
        os.close(fd)
        Path(temporary).unlink(missing_ok=True)
        raise
    return fd, Path(temporary)


def atomic_write(path: Path, write: Callable[[Path], object], suffix: str = ".tmp") -> Path:
    """Call ``write(temporary_path)``, then rename the temporary file to ``path``.

    The temporary name is unique (``mkstemp``) and keeps ``path``'s extension, so writers
    that insist on one (``keras.Model.save`` wants ``.keras``) work; the file gets the mode the
    umask gives a normal file (``umask_mode``), unless ``write`` replaces it with its own. On any failure the
    temporary file is removed; an ``OSError`` becomes ``OutputNotWritable`` naming ``path``.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_once(path.parent)
        fd, tmp = temporary_file(path.parent, path.name, suffix + path.suffix)
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


# A cache entry written by ``write_checked``: this header, the payload's SHA-256 (hex), a newline, the payload.
CHECKED_HEADER = b"cnnlib checked sha256 "
_CHECKED_LENGTH = len(CHECKED_HEADER) + 64 + 1


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created empty if missing) for the ``with`` block; another process
    asking for the same lock waits. The kernel releases it when the holder exits, even if it is killed. On a file
    system without ``flock`` (some network mounts) the block runs unlocked: every writer here is atomic anyway, so
    two processes may then do the same work, never damage it."""
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise not_writable(Path(path), exc) from exc
    try:
        with contextlib.suppress(OSError):  # ENOLCK / EOPNOTSUPP: no locks here
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing the only descriptor releases the lock


class CacheEntryDamaged(UserWarning):
    """A cache entry failed its check (digest, header or size) and is recomputed; the message names the file."""


def write_checked(path: Path, payload: bytes) -> Path:
    """Write ``payload`` atomically with its SHA-256 in front, so ``read_checked`` can tell it is intact."""
    digest = hashlib.sha256(payload).hexdigest().encode()
    return atomic_write_bytes(path, CHECKED_HEADER + digest + b"\n" + payload)


def read_checked(path: Path) -> bytes | None:
    """The payload ``write_checked`` stored at ``path``; None when there is no such file.

    A file whose payload does not match its digest (bytes changed inside, truncated) or that has no
    digest header (written by other code) is removed, with a ``CacheEntryDamaged`` warning naming it,
    and None is returned: the caller recomputes and writes it again. Never raises for a damaged file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        problem = f"cannot be read ({exc.strerror or exc})"
    else:
        stored, payload = raw[len(CHECKED_HEADER) : _CHECKED_LENGTH - 1], raw[_CHECKED_LENGTH:]
        if not raw.startswith(CHECKED_HEADER) or raw[_CHECKED_LENGTH - 1 : _CHECKED_LENGTH] != b"\n":
            problem = "has no digest header (written by other code, or not a cache entry)"
        elif hashlib.sha256(payload).hexdigest().encode() != stored:
            problem = f"does not match its SHA-256 ({len(payload)} payload bytes: changed or truncated)"
        else:
            return payload
    warnings.warn(f"Cache entry {path} {problem}: removed, recomputing it.", CacheEntryDamaged, stacklevel=2)
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass
    return None
