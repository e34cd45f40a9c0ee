"""Read and write ``results/*.json``: one schema, a provenance block, no timestamps."""

from __future__ import annotations

import json
import platform
from pathlib import Path

from cnnlib import config
from cnnlib.files import atomic_write_bytes


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape the numbers."""
    import numpy
    import sklearn

    from cnnlib._tensorflow import keras, tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
    }


def provenance(seed: int, manifest_sha256: str, profile: str, **extra) -> dict:
    """The block every results file carries: seed, split hash, versions, profile, plus ``extra``."""
    return {
        "seed": seed,
        "split_manifest_sha256": manifest_sha256,
        "profile": profile,
        "packages": package_versions(),
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
