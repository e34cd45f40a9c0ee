"""cnnlib.backend: one layer holds every backend import, and the ported methods give the same maps on JAX as on
TensorFlow (and on PyTorch, where it is installed: run this module with ``KERAS_BACKEND=torch``).

The cross-backend test is marked ``cross_backend``: ``make test`` runs it with its unit tests (TensorFlow here, JAX in
a subprocess; it runs either way round), ``make unit`` leaves it out (it builds and runs every method twice)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnlib import backend, config

pytestmark = pytest.mark.backends  # run once more on JAX by `make test-jax`

HERE = Path(__file__).parent
BACKEND_LAYER = {"cnnlib/backend.py", "cnnlib/_tensorflow.py"}  # _tensorflow: TensorFlow's quiet import, for backend
IMPORT = re.compile(
    r"^\s*(import (tensorflow|jax|torch)\b|from (tensorflow|jax|torch)\b|from cnnlib\._tensorflow\b)", re.M
)
# |other - TensorFlow| / largest |value|, measured 2026-12-04 (Intel Xeon, TensorFlow 2.21, jax 0.10.2, torch
# 2.13.0+cpu) on both models: at most 9.8e-6 on JAX and 1.1e-5 on PyTorch (MobileNetV2's upsampled Grad-CAM; arch3
# 7.7e-6, most methods 1e-6 or less, activation maximisation after 8 steps 3.8e-7), so 2e-5 for every method but one:
# SmoothGrad averages gradients at noisy copies, where float32 rounding can move an activation across a ReLU6 kink and
# flip that pixel's gradient (5.7e-4 on MobileNetV2 on both, 2.2e-7 on arch3), so 2e-3 there.
TOLERANCE = {"smooth_grad": 2e-3}
DEFAULT_TOLERANCE = 2e-5


def test_no_module_outside_the_backend_layer_imports_a_backend_package():
    importing = {
        str(p.relative_to(config.REPO_ROOT))
        for p in sorted((config.REPO_ROOT / "cnnlib").rglob("*.py"))
        if IMPORT.search(p.read_text())
    }
    assert importing - BACKEND_LAYER == set(), "import the backend package in cnnlib/backend.py only"


def test_importing_cnnlib_and_the_report_loads_no_backend():
    code = (
        "import sys, cnnlib, cnnlib.config, cnnlib.report.pdf, cnnlib.report.tables\n"
        "print(sorted(m for m in ('tensorflow', 'jax', 'torch', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=config.REPO_ROOT)
    assert out.stdout.strip() == "[]"


def glorot_weights(model, seed: int = 0) -> list[np.ndarray]:
    """Keras's default initialisation drawn with NumPy, so both backends start from the same weights (Keras's own
    random numbers differ between backends): every kernel Glorot-uniform, every vector as initialised (biases 0,
    batch-normalisation scale 1, shift 0, moving mean 0 and variance 1)."""
    rng = np.random.default_rng(seed)
    weights = []
    for w in model.get_weights():
        if w.ndim > 1:
            receptive = int(np.prod(w.shape[:-2]))
            limit = np.sqrt(6 / (receptive * w.shape[-2] + receptive * w.shape[-1]))
            w = rng.uniform(-limit, limit, w.shape)
        weights.append(w.astype(np.float32))
    return weights


@pytest.mark.cross_backend
@pytest.mark.parametrize("name", ["arch3", "mobilenetv2"])
def test_every_ported_method_gives_the_same_maps_on_the_other_backend(name, tmp_path):
    """This process's backend against another one in a subprocess (TensorFlow against JAX; JAX or PyTorch against
    TensorFlow), on the same weights and images: every method within its tolerance (``TOLERANCE``, else
    ``DEFAULT_TOLERANCE``) of the largest value."""
    other = "jax" if backend.NAME == "tensorflow" else "tensorflow"
    sys.path.insert(0, str(HERE))
    import backend_maps

    from cnnlib.models import training

    training.set_seed(0)
    model = backend_maps.build(name)
    model.set_weights(glorot_weights(model))
    size = model.inputs[0].shape[1]
    x = np.random.default_rng(0).uniform(0, 255 if name == "arch3" else 1, (2, size, size, 3)).astype(np.float32)
    np.savez(tmp_path / "w.npz", **{f"w{i}": w for i, w in enumerate(model.get_weights())})
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "KERAS_BACKEND": other, "PYTHONPATH": str(config.REPO_ROOT)}
    run = subprocess.run(
        [
            sys.executable,
            str(HERE / "backend_maps.py"),
            name,
            tmp_path / "w.npz",
            tmp_path / "x.npy",
            tmp_path / "j.npz",
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    there = np.load(tmp_path / "j.npz")
    here = backend_maps.maps(model, x)
    assert set(there.files) == set(here)
    worst = {}
    for method, reference in here.items():
        scale = np.abs(reference).max()
        assert scale > 0, f"{method}: an all-zero map proves nothing"
        worst[method] = float(np.abs(there[method] - reference).max() / scale)
    print(f"{backend.NAME} vs {other}, {name}: largest difference / largest value per method: {worst}")
    beyond = {m: w for m, w in worst.items() if w > TOLERANCE.get(m, DEFAULT_TOLERANCE)}
    assert not beyond, beyond
