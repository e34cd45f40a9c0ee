"""Compiled inference: ``model(x, training=False)`` traced once per model, and batched predictions with it.

``predict`` gives the same float32 bits as ``model.predict`` on the same batches (the same ops on the same
slices; ``tests/test_forward.py``) without Keras's per-call data pipeline, which costs about 0.1 s per call
and dominated the many small calls of the faithfulness curves and the evaluations.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable

import numpy as np

from cnnlib._tensorflow import keras, tf

# Traced functions, dropped with their model (weak keys): a function reads the model's variables, so it is
# always current, and it cannot outlive the model it was traced from. The function reaches its model through
# a weak reference: a strong one (a plain closure) would keep every model ever predicted with alive.
_FORWARD: weakref.WeakKeyDictionary[keras.Model, tf.types.experimental.GenericFunction] = weakref.WeakKeyDictionary()


def compiled_forward(model: keras.Model):
    """``model(x, training=False)`` as a tf.function with a fixed float32 signature (N, *input shape)."""
    if model not in _FORWARD:
        spec = tf.TensorSpec([None, *model.input.shape[1:]], tf.float32)
        of = weakref.ref(model)
        _FORWARD[model] = tf.function(lambda batch: of()(batch, training=False), input_signature=[spec])
    return _FORWARD[model]


def predict(model: keras.Model, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """``model.predict(x, batch_size=batch_size)``: outputs of consecutive slices of ``batch_size`` inputs,
    concatenated: float32 (N, ...). ``x`` is cast to float32 (exact for uint8 images)."""
    if isinstance(model.input, (list, tuple, dict)):  # several inputs: Keras's own pipeline
        return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    forward = compiled_forward(model)
    x = np.asarray(x)
    if not len(x):
        return np.asarray(model.predict(x, verbose=0))
    return np.concatenate(
        [np.asarray(forward(np.asarray(x[i : i + batch_size], np.float32))) for i in range(0, len(x), batch_size)]
    )


def predict_parts(model: keras.Model, parts: Iterable[np.ndarray], batch_size: int = 64) -> np.ndarray:
    """``predict(model, np.concatenate(list(parts)), batch_size)`` without building the concatenation: the
    rows are copied into one float32 batch at a time, so the batches, and the output bits, are the same while
    at most ``batch_size`` rows (not all of them) are in memory. ``parts``: arrays (n_i, *input shape)."""
    if isinstance(model.input, (list, tuple, dict)):
        return predict(model, np.concatenate(list(parts)), batch_size)
    forward = compiled_forward(model)
    batch, filled, outputs = None, 0, []
    for part in parts:
        part = np.asarray(part)
        if batch is None:
            batch = np.empty((batch_size, *part.shape[1:]), np.float32)
        start = 0
        while start < len(part):
            take = min(batch_size - filled, len(part) - start)
            batch[filled : filled + take] = part[start : start + take]
            filled, start = filled + take, start + take
            if filled == batch_size:
                outputs.append(np.asarray(forward(batch)))
                filled = 0
    if batch is None:
        raise ValueError("predict_parts needs at least one part.")
    if filled:
        outputs.append(np.asarray(forward(batch[:filled])))
    return np.concatenate(outputs)
