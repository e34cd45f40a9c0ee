"""Results of expensive pure computations, cached on disk under a key of everything they depend on.

``call(function, *args, **kwargs)`` returns ``function(*args, **kwargs)``, computing it only when no result is
stored under its key. The key is a SHA-256 of: the function's module and name; every argument (arrays by
shape, dtype and bytes; Keras models by architecture and weights; functions by name, default values and the
values they close over, recursively; plain values as JSON); the code of every module of ``cnnlib`` (any code
change is a new key; comments, docstrings and formatting are not code); and the versions of Python,
TensorFlow, Keras, NumPy, scikit-learn and SciPy. So a result is found again only for the same code, inputs,
weights and settings: the cache can never hand back something computed from what has since changed. Use it for
deterministic functions (explicit seeds), never for timings.

Layout: ``<cache_dir>/results/<module.function>/<key>.pkl``, written atomically; an unreadable file is
recomputed. ``CNNLIB_MEMO=0`` turns it off (every call computes).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import json
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import numpy as np

from cnnlib import config
from cnnlib.files import atomic_write_bytes, sweep_once

T = TypeVar("T")
PACKAGE_DIR = Path(__file__).resolve().parent


def code_digest(package_dir: Path = PACKAGE_DIR) -> str:
    """SHA-256 of every ``.py`` file of the package (paths and code), read now: never stale.

    The code is each file's syntax tree without docstrings, so editing a comment, a docstring or the
    formatting keeps the key; any other change (a name, a constant, an operation) is a new key.
    """
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0" + _code_of(path.read_bytes()) + b"\0")
    return digest.hexdigest()


@functools.lru_cache(maxsize=256)  # keyed by the file's bytes: cannot outlive them
def _code_of(source: bytes) -> bytes:
    """The syntax tree of ``source`` without docstrings (no comments, formatting or line numbers), as bytes."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


def _versions() -> dict[str, str]:
    import scipy

    from cnnlib.arithmetic import describe
    from cnnlib.results import package_versions

    return {**package_versions(), "scipy": scipy.__version__, "arithmetic": describe()}


def fingerprint(value: object, _seen: frozenset[int] = frozenset()) -> object:
    """A JSON-able description of ``value`` that changes whenever the result computed from it could.

    Raises TypeError for a value it cannot describe (better no cache than a wrong hit).
    """
    if id(value) in _seen:
        return "<cycle>"
    seen = _seen | {id(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.generic,)):
        return fingerprint(value.item(), seen)
    if isinstance(value, np.ndarray):
        from cnnlib.feature_cache import image_digest  # shape, dtype and bytes

        return {"ndarray": image_digest(value)}
    if isinstance(value, Mapping):
        return {"mapping": [[fingerprint(k, seen), fingerprint(v, seen)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {type(value).__name__: [fingerprint(v, seen) for v in value]}
    if isinstance(value, functools.partial):
        return {
            "partial": [fingerprint(value.func, seen), fingerprint(value.args, seen), fingerprint(value.keywords, seen)]
        }
    if inspect.isfunction(value):
        cells = [cell.cell_contents for cell in (value.__closure__ or ())]
        return {
            "function": f"{value.__module__}.{value.__qualname__}",
            "defaults": fingerprint(value.__defaults__, seen),
            "kwdefaults": fingerprint(value.__kwdefaults__, seen),
            "closure": fingerprint(cells, seen),
        }
    from cnnlib._tensorflow import keras

    if isinstance(value, keras.Model):
        from cnnlib.feature_cache import weights_digest

        architecture = hashlib.sha256(value.to_json().encode()).hexdigest()
        return {"keras_model": architecture, "weights": weights_digest(value)}
    raise TypeError(f"memo cannot fingerprint a {type(value).__qualname__}; call the function directly instead.")


def key_of(function: Callable, args: tuple, kwargs: dict) -> str:
    """The cache key of ``function(*args, **kwargs)`` (see the module doc)."""
    description = {
        "function": fingerprint(function),
        "args": fingerprint(list(args)),
        "kwargs": fingerprint(dict(sorted(kwargs.items()))),
        "code": code_digest(),
        "versions": _versions(),
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()


def call(function: Callable[..., T], *args, **kwargs) -> T:
    """``function(*args, **kwargs)``, from the cache when the same call (same code, inputs, weights) ran before."""
    if not config.memo_enabled():
        return function(*args, **kwargs)
    folder = config.cache_dir() / "results" / f"{function.__module__}.{function.__qualname__}"
    path = folder / f"{key_of(function, args, kwargs)[:32]}.pkl"
    sweep_once(folder)
    if path.is_file():
        try:
            return pickle.loads(path.read_bytes())
        except Exception:  # noqa: BLE001 - a truncated or unreadable file is recomputed
            path.unlink(missing_ok=True)
    result = function(*args, **kwargs)
    atomic_write_bytes(path, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    return result
