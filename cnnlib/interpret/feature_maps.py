"""Feature maps: the activations of chosen layers (nested ones by path) for a batch of inputs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cnnlib import backend
from cnnlib.backend import keras
from cnnlib.interpret.view import conv_layer_names, input_signature, resolve_layer, view

__all__ = ["activations_function", "conv_layer_names", "feature_maps"]


def activations_function(model: keras.Model, layer_paths: Sequence[str]):
    """Compiled inputs (N, H, W, C) -> [activations of each layer], with the model's current weights."""
    paths = tuple(resolve_layer(model, name) for name in layer_paths)
    copy = view(model)
    key = ("activations", paths, backend.NAME)
    if key not in copy.functions:
        probe = copy.probe(paths)

        def activations(x):
            out = probe(x, training=False)
            return list(out) if isinstance(out, (list, tuple)) else [out]

        copy.functions[key] = backend.compiled(activations, copy.pairs, [input_signature(model)])
    return copy.functions[key]


def feature_maps(
    model: keras.Model, inputs: np.ndarray, layer_names: Sequence[str], batch_size: int = 32
) -> dict[str, np.ndarray]:
    """{layer name: activations (N, h, w, C) float32} for every name (or path) in ``layer_names``.

    Args:
        model: a Keras 3 model; its current weights are used.
        inputs: float32 (N, H, W, C) images in the model's input units (uint8-range pixels for the custom networks,
            which rescale inside; ``vgg19.preprocess`` output for VGG19).
        layer_names: layer paths (``"vgg19/block5_conv4"``) or names unique in the model.
        batch_size: images per forward pass.

    Returns:
        A dict keyed by the names exactly as given: each layer's output for all N images, (N, *layer output shape), i.e.
        (N, h, w, C) for a convolution or pooling layer with C channels; float32 under the default dtype policy (the
        layer's output dtype otherwise).

    Raises:
        ExplainError: if a layer name is unknown or ambiguous, or ``model`` cannot be copied (see ``view.view``: not one
            image input and one output, a subclassed model, a layer used twice).
    """
    function = activations_function(model, layer_names)
    x = np.asarray(inputs, np.float32)
    batches = [function(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return {name: np.concatenate([np.asarray(b[j]) for b in batches]) for j, name in enumerate(layer_names)}
