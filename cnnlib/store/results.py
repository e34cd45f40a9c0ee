"""Read and write ``results/*.json``: one schema, a provenance block, no timestamps."""

from __future__ import annotations

import importlib
import json
import platform
import sys
from importlib import metadata
from pathlib import Path

from cnnlib import arithmetic, config
from cnnlib.store.files import atomic_write_bytes

# Module -> the distributions that may install it (first found wins).
_DISTRIBUTIONS = {
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tf-nightly"),
    "keras": ("keras",),
    "numpy": ("numpy",),
    "sklearn": ("scikit-learn",),
}


NOT_INSTALLED = "not installed"


def _version(module: str) -> str:
    """``module.__version__`` without importing it when it is not loaded yet: a notebook that never needs
    TensorFlow (01) need not spend seconds importing it just to name its version. ``NOT_INSTALLED`` for a
    package this Python lacks (TensorFlow on a JAX- or PyTorch-only machine)."""
    if module in sys.modules:
        return sys.modules[module].__version__
    for distribution in _DISTRIBUTIONS[module]:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    try:
        return importlib.import_module(module).__version__
    except ImportError:
        return NOT_INSTALLED


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape the numbers."""
    return {
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow"),
        "keras": _version("keras"),
        "numpy": _version("numpy"),
        "scikit-learn": _version("sklearn"),
    }


def provenance(seed: int, manifest_sha256: str, profile: str, **extra) -> dict:
    """The block every results file carries: seed, split hash, versions, profile, plus ``extra``."""
    return {
        "seed": seed,
        "split_manifest_sha256": manifest_sha256,
        "profile": profile,
        "packages": package_versions(),
        "arithmetic": arithmetic.describe(),
        **extra,
    }


def _plain(value):
    """JSON for NumPy scalars and arrays (e.g. from pandas tables)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_results(name: str, payload: dict, folder: Path = config.RESULTS_DIR, compact: bool = False) -> Path:
    """Write ``payload`` to ``folder/name.json`` (sorted keys, stable formatting); return the path.

    ``compact``: one line per top-level key instead of one per value, for per-image records (the
    same JSON, a fraction of the bytes in git).
    """
    if "provenance" not in payload:
        raise ValueError(f"results {name!r} lack a 'provenance' block; build one with provenance().")
    if compact:
        lines = [
            f"  {json.dumps(k)}: {json.dumps(payload[k], sort_keys=True, separators=(',', ':'), default=_plain)}"
            for k in sorted(payload)
        ]
        text = "{\n" + ",\n".join(lines) + "\n}\n"
    else:
        text = json.dumps(payload, indent=2, sort_keys=True, default=_plain) + "\n"
    return atomic_write_bytes(Path(folder) / f"{name}.json", text.encode())


def read_results(name: str, folder: Path = config.RESULTS_DIR, notebook: str | None = None) -> dict:
    """Load ``folder/name.json``; a missing file names the notebook that writes it."""
    path = Path(folder) / f"{name}.json"
    if not path.is_file():
        hint = f"Run notebooks/{notebook} first" if notebook else "Run the notebook that writes it first"
        raise FileNotFoundError(f"Results file {path} not found. {hint} (or `make report`).")
    return json.loads(path.read_text())


def update_benchmarks(key: str, value: dict, path: Path | None = None) -> Path:
    """Set ``key`` in ``results/benchmarks.json`` (read-modify-write, atomic), leaving every other key as it was."""
    path = Path(path or config.RESULTS_DIR / "benchmarks.json")
    current = json.loads(path.read_text()) if path.is_file() else {}
    current[key] = value
    return atomic_write_bytes(path, (json.dumps(current, indent=2, sort_keys=True, default=_plain) + "\n").encode())
