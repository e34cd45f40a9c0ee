"""Which tf.distribute strategy training runs under: several GPUs -> MirroredStrategy, else a no-op.

``strategy()`` returns ``tf.distribute.MirroredStrategy`` (TensorFlow's own data-parallel engine:
one model replica per GPU, gradients all-reduced every step) when TensorFlow sees more than one
GPU, and the default strategy (no-op: one device, the usual code path) otherwise. Build and
compile the model inside ``with strategy().scope():``; ``fit`` then splits each batch across the
replicas. Nothing changes for the user and nothing here needs a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence

from cnnlib._tensorflow import tf


def strategy(devices: Sequence[str] | None = None) -> tf.distribute.Strategy:
    """MirroredStrategy over ``devices`` (default: every GPU, when there are >= 2), else the default strategy."""
    if devices is None:
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] if len(gpus) > 1 else None
    if devices and len(devices) > 1:
        return tf.distribute.MirroredStrategy(list(devices))
    return tf.distribute.get_strategy()


def describe(active: tf.distribute.Strategy) -> str:
    """e.g. 'MirroredStrategy over 2 devices' or 'default (one device)'."""
    if isinstance(active, tf.distribute.MirroredStrategy):
        return f"MirroredStrategy over {active.num_replicas_in_sync} devices"
    return "default (one device)"
