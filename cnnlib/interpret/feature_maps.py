"""Feature maps: the activations of chosen layers for a batch of inputs."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np


def conv_layer_names(model: keras.Model) -> list[str]:
    """Names of the model's Conv2D layers, in order."""
    return [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def feature_maps(
    model: keras.Model, inputs: np.ndarray, layer_names: Sequence[str], batch_size: int = 32
) -> dict[str, np.ndarray]:
    """{layer name: activations (N, h, w, C) float32} for every name in ``layer_names``, one forward pass."""
    probe = keras.Model(model.input, [model.get_layer(name).output for name in layer_names])
    outputs = probe.predict(np.asarray(inputs, np.float32), batch_size=batch_size, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    return {name: np.asarray(out) for name, out in zip(layer_names, outputs)}
