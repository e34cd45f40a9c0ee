"""Work on one image, computed once and kept: what makes the explorer answer a click without a new pass.

Everything the explorer shows for an image depends on (model, its weights, image) and on the controls. An
``ImageWork`` holds, for the *current* image of the *current* model with its *current* weights, every array
computed so far (probabilities, a layer's activations, every target's Grad-CAM map, a neuron's guided
backpropagation, ...), each under a key naming everything else it depends on (layer, channel, position,
target, settings). A change of channel, neuron, target class or method that has been computed before, or that
needs only arrays already kept (a feature map, an argmax patch), is then a lookup plus drawing.

Never stale: the session (``cnnlib.explore.state``) opens a new ``ImageWork`` whenever the model, the image or
the model's weights change. Weights are compared by ``weights_fingerprint`` (a CRC-32 of every variable's bytes,
about 25 ms for VGG19's 20 million parameters on 2 cores) at every frame, so a model retrained or edited in
place is recomputed, not shown from memory. Memory is bounded: one image at a time, at most ``LIMIT`` arrays
(least recently used dropped first).

Every computation goes through ``ImageWork.get``, which counts it by kind (``passes``) and times it
(``seconds``): "forward" (one forward pass: probabilities, a layer's activations), "backward" (one gradient: a
forward and a backward pass, e.g. Grad-CAM of every target at once, a neuron's guided backpropagation), or a
method's name for methods that run many passes of their own (Score-CAM, SmoothGrad, occlusion, ...).
"""

from __future__ import annotations

import time
import zlib
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

import numpy as np

T = TypeVar("T")
LIMIT = 64  # arrays kept per image: a VGG19 guided-backprop map is 0.6 MB, so at most ~40 MB


def weights_fingerprint(model) -> int:
    """CRC-32 of every variable of ``model`` (path, shape, dtype, bytes), in order: changes when any weight does.

    An in-memory staleness check (a collision needs a 1-in-4-billion coincidence), not a cache key on disk
    (``store.memo.weights_digest``, SHA-256, is that). About 25 ms for VGG19 on 2 cores, a quarter of a SHA-256."""
    from cnnlib import backend  # the model exists, so its backend is loaded already

    crc = 0
    for variable in model.weights:
        value = np.ascontiguousarray(backend.to_numpy(variable.value))
        crc = zlib.crc32(f"{variable.path}|{value.shape}|{value.dtype.str}|".encode(), crc)
        crc = zlib.crc32(value.data, crc)
    return crc


class ImageWork:
    """The arrays computed for one image on one model with one set of weights, and what they cost.

    Args:
        key: what the arrays depend on besides the controls, e.g. (model name, model id, weights fingerprint,
            image key); the session opens a new ``ImageWork`` when it changes.
        limit: arrays kept at most (least recently used dropped first).
    """

    def __init__(self, key: Hashable = None, limit: int = LIMIT):
        self.key, self.limit = key, limit
        self._values: OrderedDict[Hashable, object] = OrderedDict()
        self.passes: Counter[str] = Counter()  # kind -> computations done so far
        self.seconds: Counter[str] = Counter()  # kind -> seconds they took

    def __contains__(self, key: Hashable) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: Hashable, kind: str, compute: Callable[[], T]) -> T:
        """The array kept under ``key``, or ``compute()`` (counted as one ``kind`` pass and timed), kept.

        Args:
            key: everything the value depends on besides this work's own key (method, layer, channel, ...).
            kind: "forward", "backward" or a method's name (see the module docstring); counted in ``passes``.
            compute: called without arguments when nothing is kept under ``key``.

        Returns:
            The kept or computed value (the same object on every later call with ``key``).
        """
        if key in self._values:
            self._values.move_to_end(key)
            return self._values[key]  # type: ignore[return-value]
        start = time.perf_counter()
        value = compute()
        self.seconds[kind] += time.perf_counter() - start
        self.passes[kind] += 1
        self._values[key] = value
        while len(self._values) > self.limit:
            self._values.popitem(last=False)
        return value

    def counts(self) -> tuple[Counter[str], Counter[str]]:
        """Copies of (passes, seconds) so far: subtract an earlier copy to get one frame's share."""
        return Counter(self.passes), Counter(self.seconds)
