"""Guided backpropagation (Springenberg et al., 2015) through a copy of the model.

At every ReLU the backward pass lets a gradient through only where both the upstream
gradient and the forward input are positive. The rule is a ``tf.custom_gradient`` ReLU put
into a clone of the model: in activations fused into Conv/Dense layers, in ``Activation``
and ``ReLU`` layers, and inside nested models. The forward pass is unchanged.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf


@tf.custom_gradient
def guided_relu(x):
    """ReLU forward; backward passes dy only where dy > 0 and x > 0."""

    def grad(dy):
        return dy * tf.cast(dy > 0, dy.dtype) * tf.cast(x > 0, dy.dtype)

    return tf.nn.relu(x), grad


def _is_plain_relu(activation) -> bool:
    return getattr(activation, "__name__", "") == "relu"


def _clone_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
    if isinstance(layer, keras.layers.ReLU):
        config = layer.get_config()
        if config.get("max_value") is None and not config.get("negative_slope") and not config.get("threshold"):
            return keras.layers.Activation(guided_relu, name=layer.name)
    clone = layer.__class__.from_config(layer.get_config())
    if _is_plain_relu(getattr(layer, "activation", None)):
        clone.activation = guided_relu
    return clone


_COPIES: "weakref.WeakKeyDictionary[keras.Model, keras.Model]" = weakref.WeakKeyDictionary()


def guided_copy(model: keras.Model) -> keras.Model:
    """A clone of ``model`` with every plain ReLU replaced by ``guided_relu``, same weights (built once, cached)."""
    if model not in _COPIES:
        copy = keras.models.clone_model(model, clone_function=_clone_layer, recursive=True)
        copy.set_weights(model.get_weights())
        _COPIES[model] = copy
    return _COPIES[model]


_FUNCTIONS: "weakref.WeakKeyDictionary[keras.Model, dict]" = weakref.WeakKeyDictionary()


def _gradient_function(model: keras.Model, layer_name: str):
    """tf.function (inputs, weights) -> d sum(layer_output * weights) / d inputs, through the guided copy."""
    cache = _FUNCTIONS.setdefault(model, {})
    if layer_name not in cache:
        copy = guided_copy(model)
        probe = keras.Model(copy.input, copy.get_layer(layer_name).output)
        x_spec = tf.TensorSpec([None, *model.input.shape[1:]], tf.float32)
        w_spec = tf.TensorSpec([None, *probe.output.shape[1:]], tf.float32)

        @tf.function(input_signature=[x_spec, w_spec])
        def gradient(x, weights):
            with tf.GradientTape() as tape:
                tape.watch(x)
                score = tf.reduce_sum(probe(x, training=False) * weights)
            return tape.gradient(score, x)

        cache[layer_name] = gradient
    return cache[layer_name]


def guided_backprop(
    model: keras.Model,
    inputs: np.ndarray,
    layer_name: str,
    channel: int | None = None,
    positions: Sequence[tuple[int, int]] | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Guided gradient of one neuron of ``layer_name`` with respect to the inputs: float32 (N, H, W, 3).

    The target keeps one neuron, (row, col, ``channel``), and zeroes every other neuron of the
    layer; by default (row, col) is the channel's argmax in each image. Alternatively pass
    ``weights`` (N, *layer output shape) to backpropagate any weighting of the layer (a one-hot
    logit gives the guided gradient of a class score). Images are independent: a batch gives
    the same maps as one image at a time.
    """
    x = np.asarray(inputs, np.float32)
    if weights is None:
        if channel is None:
            raise ValueError("Give a channel (and optionally positions), or explicit weights.")
        if positions is None:
            probe = keras.Model(model.input, model.get_layer(layer_name).output)
            acts = np.asarray(probe(x, training=False))[..., channel]
            positions = [np.unravel_index(int(np.argmax(a)), a.shape) for a in acts]
        shape = model.get_layer(layer_name).output.shape[1:]
        weights = np.zeros((len(x), *shape), np.float32)
        for i, (row, col) in enumerate(positions):
            weights[i, row, col, channel] = 1.0
    return np.asarray(_gradient_function(model, layer_name)(x, np.asarray(weights, np.float32)))
