"""One float32 arithmetic for every x86-64 CPU: the settings that make TensorFlow and NumPy sum in the same order
whatever instruction set (AVX2, AVX-512, AMX) or core count the machine offers.

Why: TensorFlow turns oneDNN's kernels on by itself only on some CPUs (AVX-512 ones) and uses Eigen's
elsewhere; oneDNN picks AVX2, AVX-512 or AMX code at run time, with different summation orders; and every sum is
split by the number of threads. Training with early stopping amplifies those last-bit differences into other
trained networks (issue 26). Turning oneDNN's kernels on everywhere, capping them at AVX2 (which every x86-64
CPU since about 2013 has) and fixing the thread count makes the kernels and the thread split the same on every
such CPU: measured on two CPU models, the trained networks came out the same bytes, and only VGG19's activations
differed, in the last bits (oneDNN also sizes its blocks by the CPU's caches; docs/reproducibility.md). On an AVX2
CPU oneDNN's kernels also train 1.6-2.6x faster than Eigen's. ``benchmarks/bench_arithmetic.py``
measures what each setting changes and costs; the README's "Same numbers on any CPU" section gives the figures.

``CNNLIB_ARITHMETIC``:

- ``pinned`` (default): the settings in ``PINNED`` are put into ``os.environ`` when ``cnnlib`` is imported,
  before TensorFlow or NumPy's BLAS read them, so every process the project starts (notebook kernels, nbval,
  the runner's children) inherits them.
- ``native``: leave the libraries' own choices (fastest kernels, every core); results are then the same only on
  the same CPU model and core count, and every results file says ``"arithmetic": {"mode": "native", ...}``.

The settings are read by the libraries once, when they load: a process that imported NumPy or TensorFlow
before ``cnnlib`` keeps what it had (``describe()`` says so, and the results' provenance records it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

ENV_VAR = "CNNLIB_ARITHMETIC"
MODES = ("pinned", "native")

# variable -> (pinned value, the library that reads it when it loads, why). One declaration, read by apply(),
# describe(), the benchmark and the README.
PINNED: dict[str, tuple[str, str, str]] = {
    "TF_ENABLE_ONEDNN_OPTS": (
        "1",
        "tensorflow",
        "oneDNN's kernels on every CPU (TensorFlow's own choice on AVX-512 CPUs; on AVX2 ones they train faster)",
    ),
    "ONEDNN_MAX_CPU_ISA": (
        "AVX2",
        "tensorflow",
        "oneDNN's convolutions and matrix products use AVX2 code, never AVX-512 or AMX",
    ),
    "TF_NUM_INTRAOP_THREADS": ("2", "tensorflow", "every sum is split the same way whatever the core count"),
    "TF_NUM_INTEROP_THREADS": ("2", "tensorflow", "as many independent ops at once as on the 2-core reference machine"),
    "OPENBLAS_CORETYPE": ("Haswell", "numpy", "NumPy's matrix products (CAM upsampling) use OpenBLAS's AVX2 kernels"),
}
# Kept when the machine already sets it: some machines set OpenBLAS's core type because other kernels crash there.
_MACHINE_MAY_SET = ("OPENBLAS_CORETYPE",)


def mode(env: MutableMapping[str, str] | None = None) -> str:
    """``pinned`` or ``native`` from ``CNNLIB_ARITHMETIC`` (unset: ``pinned``; anything else: ``SettingError``)."""
    from cnnlib.config import env_setting, invalid

    value = env_setting(ENV_VAR, env)
    if value is None:
        return "pinned"
    if value.lower() not in MODES:
        raise invalid(ENV_VAR, value)
    return value.lower()


def apply(env: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Put the pinned settings into ``env`` (default ``os.environ``) unless the mode is ``native``.

    A pinned variable the user set to another value is overridden (the mode promises these values), except
    ``OPENBLAS_CORETYPE`` where the machine sets it. Returns the variables that were set.
    """
    env = os.environ if env is None else env
    if mode(env) == "native":
        return {}
    changed = {}
    for name, (value, _, _) in PINNED.items():
        if name in _MACHINE_MAY_SET and env.get(name):
            continue
        if env.get(name) != value:
            env[name] = value
            changed[name] = value
    if env is os.environ:
        _CHANGED_HERE.update(changed)
    return changed


def describe(env: MutableMapping[str, str] | None = None) -> dict:
    """What the arithmetic of this process is, for results' provenance: the mode, each pinned variable's value
    as the process sees it, and any library that was loaded before this process set one of its variables
    (then that library kept its own choice; a process that inherited the pinned environment from its parent,
    like the notebook kernels ``make`` starts, is pinned from its first line)."""
    env = os.environ if env is None else env
    current = mode(env)
    info = {"mode": current, "settings": {name: env.get(name, "unset") for name in PINNED}}
    if current == "pinned":
        late = sorted(
            {lib for name, (_, lib, _) in PINNED.items() if name in _CHANGED_HERE and lib in _LOADED_BEFORE_PIN}
        )
        if late:
            info["loaded_before_pin"] = late
    return info


def summary(block: dict | None) -> str:
    """One sentence for the report from a results file's ``provenance.arithmetic`` block (``describe()``)."""
    if not block:
        return "not recorded (results made before cnnlib.arithmetic existed)"
    settings = ", ".join(f"{k}={v}" for k, v in block["settings"].items())
    if block["mode"] == "pinned" and block["settings"] == {k: v for k, (v, _, _) in PINNED.items()}:
        late = (
            f"; loaded before the pin: {', '.join(block['loaded_before_pin'])}" if "loaded_before_pin" in block else ""
        )
        return (
            f"pinned ({settings}): trained networks and decisions the same bytes on x86-64 CPUs with AVX2 (two models "
            f"measured), VGG19 activations within tolerance{late}"
        )
    return f"{block['mode']} ({settings}): numbers reproduce on the same CPU model and core count"


_LOADED_BEFORE_PIN = {lib for lib in ("numpy", "tensorflow") if lib in sys.modules}
_CHANGED_HERE: dict[str, str] = {}  # variables this process's apply() set in os.environ
