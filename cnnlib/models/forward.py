"""Compiled inference: ``model(x, training=False)`` traced once per model, and batched predictions with it.

``predict`` gives the same float32 bits as ``model.predict`` on the same batches (the same ops on the same
slices; ``tests/models/test_forward.py``) without Keras's per-call data pipeline, which costs about 0.1 s per call
and dominated the many small calls of the faithfulness curves and the evaluations.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable

import numpy as np

from cnnlib import backend
from cnnlib.backend import keras

# Traced functions, dropped with their model (weak keys): a function reads the model's variables, so it is
# always current, and it cannot outlive the model it was traced from. The function reaches its model through
# a weak reference: a strong one (a plain closure) would keep every model ever predicted with alive.
_FORWARD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled_forward(model: keras.Model):
    """``model(x, training=False)`` compiled once (``backend.compiled_call``: a tf.function with a fixed float32
    signature (N, *input shape) on TensorFlow, ``jax.jit`` on JAX)."""
    if model not in _FORWARD:
        _FORWARD[model] = backend.compiled_call(model)
    return _FORWARD[model]


# Rows of every forward pass the project computes for results. oneDNN's kernels split a batch between threads by
# its size, so an input's outputs can differ in the last bits with the number of rows beside it (measured under
# the pinned arithmetic on an AVX2 CPU: one image alone against the same image among five); with a fixed number
# of rows (the last batch padded with zeros) they are the same bits whatever the batch holds and wherever it ends.
FIXED_ROWS = 8


def in_fixed_batches(function, x: np.ndarray, rows: int = FIXED_ROWS) -> np.ndarray:
    """``function`` applied to consecutive slices of exactly ``rows`` rows of ``x`` (the last one padded with
    zeros, whose outputs are dropped), concatenated: ``function(x)`` with each row's output independent of its
    neighbours. ``x``: (N, ...) with N >= 1."""
    outputs = []
    for start in range(0, len(x), rows):
        part = np.asarray(x[start : start + rows])
        n = len(part)
        if n < rows:
            part = np.concatenate([part, np.zeros((rows - n, *part.shape[1:]), part.dtype)])
        outputs.append(np.asarray(function(part))[:n])
    return np.concatenate(outputs)


def predict(model: keras.Model, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Model outputs, float32 (N, ...), computed in batches of ``FIXED_ROWS`` (see there): each input's output
    does not depend on what else is predicted with it. ``batch_size`` is kept for callers; it does not change
    the bits. ``x`` is cast to float32 (exact for uint8 images)."""
    if isinstance(model.input, (list, tuple, dict)):  # several inputs: Keras's own pipeline
        return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    forward = compiled_forward(model)
    x = np.asarray(x)
    if not len(x):
        return np.asarray(model.predict(x, verbose=0))
    return in_fixed_batches(lambda batch: forward(np.asarray(batch, np.float32)), x)


def predict_parts(model: keras.Model, parts: Iterable[np.ndarray], batch_size: int = 64) -> np.ndarray:
    """``predict(model, np.concatenate(list(parts)))`` without building the concatenation: the rows are copied
    into one float32 batch of ``FIXED_ROWS`` at a time, so the output bits are the same while only that many rows
    (not all of them) are in memory. ``parts``: arrays (n_i, *input shape)."""
    if isinstance(model.input, (list, tuple, dict)):
        return predict(model, np.concatenate(list(parts)), batch_size)
    forward = compiled_forward(model)
    rows = FIXED_ROWS
    batch, filled, outputs = None, 0, []
    for part in parts:
        part = np.asarray(part)
        if batch is None:
            batch = np.empty((rows, *part.shape[1:]), np.float32)
        start = 0
        while start < len(part):
            take = min(rows - filled, len(part) - start)
            batch[filled : filled + take] = part[start : start + take]
            filled, start = filled + take, start + take
            if filled == rows:
                outputs.append(np.asarray(forward(batch)))
                filled = 0
    if batch is None:
        raise ValueError("predict_parts needs at least one part.")
    if filled:
        batch[filled:] = 0  # padding rows: their outputs are dropped
        outputs.append(np.asarray(forward(batch))[:filled])
    return np.concatenate(outputs)
