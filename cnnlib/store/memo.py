"""Results of expensive pure computations, cached on disk under a key of everything they depend on.

``call(function, *args, **kwargs)`` returns ``function(*args, **kwargs)``, computing it only when no result is
stored under its key. The key is a SHA-256 of: the function's module and name; every argument (arrays by
shape, dtype and bytes; Keras models by architecture and weights; functions by name, default values and the
values they close over, recursively; plain values as JSON); the code of every module of ``cnnlib`` (any code
change is a new key; comments, docstrings and formatting are not code); and the versions of Python,
TensorFlow, Keras, NumPy, scikit-learn and SciPy. So a result is found again only for the same code, inputs,
weights and settings: the cache can never hand back something computed from what has since changed. Use it for
deterministic functions (explicit seeds), never for timings.

Layout: ``<cache_dir>/results/<module.function>/<key>.pkl``, written atomically with the SHA-256 of its pickle
(``files.write_checked``); a file that fails the check (changed bytes, truncated, no digest) is removed with a
warning naming it and recomputed. ``CNNLIB_MEMO=0`` turns it off (every call computes).
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
from cnnlib.store.files import read_checked, sweep_once, write_checked

T = TypeVar("T")
PACKAGE_DIR = Path(__file__).resolve().parent.parent  # cnnlib/


def image_digest(image: np.ndarray) -> str:
    """SHA-256 (hex) of one decoded image: its shape, dtype and pixel bytes."""
    image = np.ascontiguousarray(image)
    digest = hashlib.sha256(f"{image.shape}|{image.dtype.str}|".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def weights_digest(model) -> str:
    """SHA-256 (hex) of a model's weights: every variable's path, shape, dtype and bytes, in order.

    Part of a cache key for anything computed from a model, so retrained or edited weights never hit
    an old entry (about 0.1 s for VGG19's 20 million parameters)."""
    from cnnlib.backend import keras

    digest = hashlib.sha256()
    for variable in model.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(variable))
        digest.update(f"{variable.path}|{value.shape}|{value.dtype.str}|".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


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


def _module_file(name: str, package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The file of module ``cnnlib.a.b`` (``a/b.py`` or ``a/b/__init__.py``), None if it is not a module."""
    parts = name.split(".")[1:]
    for candidate in (package_dir.joinpath(*parts).with_suffix(".py"), package_dir.joinpath(*parts, "__init__.py")):
        if parts and candidate.is_file():
            return candidate
    return package_dir / "__init__.py" if not parts else None


def _imported_modules(path: Path) -> set[str]:
    """The ``cnnlib`` modules ``path`` imports anywhere (top level or inside a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "cnnlib"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cnnlib":
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # a module imported by name, if it is one
    return found


def code_closure(*modules: str, package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """{relative file name: path} of ``modules`` and every ``cnnlib`` module they import, transitively
    (importing ``cnnlib.a.b`` runs ``cnnlib/__init__.py`` and ``cnnlib/a/__init__.py`` too)."""
    files: dict[str, Path] = {}
    todo = list(modules)
    while todo:
        name = todo.pop()
        path = _module_file(name, package_dir)
        if path is None or (relative := path.relative_to(package_dir).as_posix()) in files:
            continue
        files[relative] = path
        todo += [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]  # its packages
        todo += _imported_modules(path)
    return files


def code_closure_digest(*modules: str, package_dir: Path = PACKAGE_DIR) -> str:
    """SHA-256 of the code of ``modules`` (e.g. ``"cnnlib.data.images"``) and of every ``cnnlib`` module they import,
    transitively (syntax trees without docstrings, as ``code_digest``), read now: never stale.

    The code part of a cache key for what those modules compute: narrower than ``code_digest`` (editing the
    report does not invalidate decoded images), complete for what they can call."""
    files = code_closure(*modules, package_dir=package_dir)
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + _code_of(files[name].read_bytes()) + b"\0")
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    import scipy

    from cnnlib.arithmetic import describe
    from cnnlib.store.results import package_versions

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
    from cnnlib.backend import keras

    if isinstance(value, keras.Model):
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
    payload = read_checked(path)  # None when missing or damaged (then removed, with a warning naming it)
    if payload is not None:
        return pickle.loads(payload)  # intact: the bytes this code's pickle.dumps wrote
    result = function(*args, **kwargs)
    write_checked(path, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    return result
