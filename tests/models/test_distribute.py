"""cnnlib.models.distribute: MirroredStrategy over two logical CPU devices trains to the same weights as one device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from cnnlib import config
from cnnlib.models import distribute

HERE = Path(__file__).resolve().parent


def _train(mode: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(config.REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, str(HERE / "distribute_worker.py"), mode],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_one_device_is_the_default_strategy():
    assert distribute.describe(distribute.strategy()) == "default (one device)"  # CPU (or one GPU): no-op


def test_mirrored_over_two_logical_cpus_matches_one_device():
    single, mirrored = _train("single"), _train("mirrored")
    assert single["strategy"] == "default (one device)"
    assert mirrored["strategy"] == "MirroredStrategy over 2 devices"
    for a, b in zip(single["weights"], mirrored["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # same maths, summation order may differ
    assert any(not np.array_equal(np.zeros(len(w)), w) for w in single["weights"])
