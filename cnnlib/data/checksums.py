"""Official Caltech-101 checksums: the one policy for missing, altered and non-official files.

Lowest layer of the data side: ``cnnlib.data.dataset`` and ``cnnlib.data.download`` both import from here,
never from each other's internals (no import circle).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from cnnlib import config
from cnnlib.store.files import file_sha256

SKIP_ENV = "CNNLIB_SKIP_BAD_IMAGES"
ALLOW_EXTRA_ENV = "CNNLIB_ALLOW_EXTRA_IMAGES"
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")


class DatasetError(RuntimeError):
    """A problem with the user's images: the message says which path and what to do."""


def shown(path: Path | str) -> str:
    """A path as text for messages, undecodable bytes of its name escaped (``image_\\xff.jpg``)."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def read_checksums(path: Path = config.CHECKSUMS_FILE) -> dict[str, str]:
    """``sha256sum`` file -> {relative path: hex digest}; a malformed line is a ``DatasetError``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(
            f"Cannot read the checksum list {path}: {exc}. Restore it with `git checkout {path.name}` "
            "(it is data/caltech101_sha256.txt in the repository)."
        ) from exc
    sums = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or not SHA256_PATTERN.match(parts[0].lower()) or not parts[1].strip().lstrip("*"):
            raise DatasetError(
                f"{path}, line {number}, is not '<64 hex digits>  <class>/<file>': {line[:120]!r}. "
                "Restore the file from the repository (`git checkout data/caltech101_sha256.txt`)."
            )
        sums[parts[1].strip().lstrip("*")] = parts[0].lower()
    return sums


def official_checksums(classes: Sequence[str], checksums: Path | None = config.CHECKSUMS_FILE) -> dict[str, str]:
    """{relative path: SHA-256} of the official files of those ``classes`` that the list covers."""
    if checksums is None:
        return {}
    return {p: d for p, d in read_checksums(checksums).items() if p.split("/")[0] in classes}


def audit(
    found: Mapping[str, str], classes: Sequence[str], official: Mapping[str, str], allow_extra: bool = False
) -> list[dict]:
    """The one checksum policy: bad images among ``found`` ({relative path: SHA-256}).

    For every class that has official files: each official file must be present with its
    official content, and a file that is not an official one is bad unless ``allow_extra``.
    Returns [{"path", "reason"}] sorted by path (empty when all is well).
    """
    checked = {p.split("/")[0] for p in official}
    bad = []
    for rel, digest in official.items():
        if rel not in found:
            bad.append({"path": rel, "reason": "official file missing"})
        elif found[rel] != digest:
            bad.append(
                {
                    "path": rel,
                    "reason": f"content differs from the official file (SHA-256 {found[rel]}, expected {digest})",
                }
            )
    if not allow_extra:
        for rel in found:
            if rel.split("/")[0] in checked and rel not in official:
                bad.append({"path": rel, "reason": "not an official Caltech-101 file"})
    return sorted(bad, key=lambda b: b["path"])


def bad_images_error(bad: Sequence[dict], root: Path) -> DatasetError:
    """The one error for bad images: every file and its reason, and the ways out."""
    listing = "\n  ".join(f"{shown(b['path'])}: {b['reason']}" for b in bad)
    extra = any(b["reason"] == "not an official Caltech-101 file" for b in bad)
    return DatasetError(
        f"{len(bad)} bad image(s) under {shown(root)}:\n  {listing}\n"
        "Fix or remove them (or re-download the dataset: delete data/raw/ and rerun, or point "
        f"CALTECH101_DIR at an unmodified copy of Caltech-101), or set {SKIP_ENV}=1 to leave them out "
        "of the split (they are then counted in the results and the report)."
        + (f" Images you added on purpose to a Caltech-101 class are used with {ALLOW_EXTRA_ENV}=1." if extra else "")
    )


def verify_checksums(
    root: Path, classes: Sequence[str] = config.CLASSES, checksums: Path = config.CHECKSUMS_FILE
) -> int:
    """Check every listed image of ``classes`` under ``root``; return how many were checked.

    Classes absent from the checksum file (a user's own data) are not checked.
    Raises ``DatasetError`` listing every missing or altered file (all of them).
    """
    expected = official_checksums(classes, checksums)
    found = {rel: file_sha256(Path(root) / rel) for rel in expected if (Path(root) / rel).is_file()}
    bad = audit(found, classes, expected, allow_extra=True)
    if bad:
        listing = "\n  ".join(f"{b['reason']}: {shown(Path(root) / b['path'])}" for b in bad)
        raise DatasetError(
            f"{len(bad)} image(s) under {shown(root)} do not match {checksums}:\n  {listing}\n"
            "Re-download the dataset (delete data/raw/ and rerun) or point CALTECH101_DIR at an "
            "unmodified copy of Caltech-101."
        )
    return len(expected)
