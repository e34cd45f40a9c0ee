"""The Keras models the tests explain, defined once. Seeded: the same call gives the same weights.

- ``project``: one of the project's architectures (``arch1`` .. ``arch3``), randomly initialised.
- ``flat_cnn``: a few small convs -> flatten -> dense with a fused softmax (the CAM family's flat-head case).
- ``gap_cnn``: conv -> global average pooling -> dense: the architecture on which Grad-CAM equals CAM.
"""

from __future__ import annotations

from collections.abc import Sequence

from cnnlib._tensorflow import keras
from cnnlib.models import architectures, training


def project(name: str = "arch2", seed: int = 0, **build) -> keras.Model:
    """``architectures.build_model(name, **build)`` after ``training.set_seed(seed)`` (224 x 224 x 3 by default)."""
    training.set_seed(seed)
    return architectures.build_model(name, **build)


def flat_cnn(
    seed: int = 0,
    *,
    shape: tuple[int, int, int] = (16, 16, 3),
    filters: Sequence[int] = (4, 6),
    pool: bool = True,
    padding: str = "valid",
    names: Sequence[str] | None = None,
    head: str = "head",
) -> keras.Model:
    """``shape`` -> one 3x3 ReLU conv per entry of ``filters`` (named ``names``), a 2x2 max-pool after the first
    when ``pool`` -> flatten -> dense 3 with a fused softmax, named ``head``."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape)
    x = inputs
    for i, count in enumerate(filters):
        x = keras.layers.Conv2D(count, 3, padding=padding, activation="relu", name=names[i] if names else None)(x)
        if pool and i == 0:
            x = keras.layers.MaxPooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name=head)(keras.layers.Flatten()(x)))


def gap_cnn(seed: int = 0, *, fused_softmax: bool = True) -> keras.Model:
    """16x16x3 -> conv "conv" (6, valid, ReLU) -> global average pooling -> dense "logits" (4) -> softmax.

    ``fused_softmax``: the softmax is the Dense layer's activation (tf-keras-vis's ReplaceToLinear only
    linearises a layer's ``activation``; a separate Softmax layer would stay, and it would explain
    probabilities), else a separate Activation layer (which the project's methods step over themselves)."""
    training.set_seed(seed)
    inputs = keras.Input((16, 16, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(6, 3, activation="relu", name="conv")(inputs))
    if fused_softmax:
        return keras.Model(inputs, keras.layers.Dense(4, activation="softmax", name="logits")(pooled))
    return keras.Model(inputs, keras.layers.Activation("softmax")(keras.layers.Dense(4, name="logits")(pooled)))
