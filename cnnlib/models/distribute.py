"""What training runs under: several accelerators -> one replica each (data parallel), else a no-op.

``strategy()`` returns, on TensorFlow, ``tf.distribute.MirroredStrategy`` (one model replica per GPU, gradients
all-reduced every step) when TensorFlow sees more than one GPU, and the default strategy (no-op: one device, the
usual code path) otherwise; on JAX, ``keras.distribution.DataParallel`` over every device when there are several
(``cnnlib.backend.data_parallel``). Build and compile the model inside ``with strategy().scope():``; ``fit`` then
splits each batch across the replicas. Nothing changes for the user and nothing here needs a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence

from cnnlib import backend


def strategy(devices: Sequence[str] | None = None):
    """MirroredStrategy (TensorFlow) or DataParallel (JAX) over ``devices`` (default: every accelerator, when there are
    >= 2), else the default no-op; see ``backend.data_parallel``."""
    return backend.data_parallel(devices)


def describe(active) -> str:
    """e.g. 'MirroredStrategy over 2 devices' or 'default (one device)'."""
    return backend.describe_parallel(active)
