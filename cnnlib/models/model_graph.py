"""Walking any Keras 3 Functional or Sequential model: layer paths and a graph run with nested models inlined.

A layer inside a nested model is named by its path, ``"vgg19/block5_conv4"``, or by its name
alone when that is unique. ``walk`` runs a function through the layer graph in call order
with any values in place of tensors (symbolic tensors to build a flat copy, receptive-field
geometry to project neurons onto the input), entering nested models instead of treating
them as one layer. Nothing here modifies the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from cnnlib.backend import keras


class ExplainError(ValueError):
    """A model or layer the methods cannot handle: the message says why and what to do."""


def is_model(layer: Any) -> bool:
    """True for a nested Keras model used as a layer."""
    return isinstance(layer, keras.Model)


def iter_layers(model: keras.Model, prefix: str = "") -> Iterator[tuple[str, keras.layers.Layer]]:
    """(path, layer) for every layer, depth first, nested models included ("outer/inner")."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        path = f"{prefix}{layer.name}"
        yield path, layer
        if is_model(layer):
            yield from iter_layers(layer, path + "/")


def resolve_layer(model: keras.Model, name: str) -> str:
    """The full path of a layer given by path (``"vgg19/block5_conv4"``) or by a name unique in the model."""
    paths = [p for p, _ in iter_layers(model)]
    if name in paths:
        return name
    matches = [p for p in paths if p.rsplit("/", 1)[-1] == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ExplainError(f"Layer name {name!r} is ambiguous in model {model.name!r}: give one of {matches}.")
    shown = ", ".join(paths[:40]) + (" ..." if len(paths) > 40 else "")
    raise ExplainError(f"Model {model.name!r} has no layer {name!r}. Its layers: {shown}")


def get_layer(model: keras.Model, name: str) -> keras.layers.Layer:
    """The layer object for a path or unique name (see ``resolve_layer``)."""
    return dict(iter_layers(model))[resolve_layer(model, name)]


def output_layer(model: keras.Model) -> tuple[str, keras.layers.Layer]:
    """(path, layer) of the layer producing the model's single output, looking into nested models."""
    if len(model.outputs) != 1 or len(model.inputs) != 1:
        raise ExplainError(
            f"Model {model.name!r} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; the explanation "
            "methods need one image input and one class-score output."
        )
    path, layer = "", model
    while is_model(layer):
        inner = layer.layers[-1] if isinstance(layer, keras.Sequential) else layer.outputs[0]._keras_history.operation
        path, layer = (f"{path}/{inner.name}" if path else inner.name), inner
    return path, layer


Call = Callable[..., Any]  # call(layer, path, *args, **kwargs) -> the layer's output value


def walk(model: keras.Model, value: Any, call: Call, prefix: str = "") -> Any:
    """Run ``call`` for every (non-model) layer in call order, feeding each the values its inputs got.

    ``value`` stands for the model's input. Nested Functional / Sequential models are entered;
    a subclassed model, whose inner graph is unknown, is an ``ExplainError``.
    """

    def step(layer, *args, **kwargs):
        path = f"{prefix}{layer.name}"
        if is_model(layer):
            return walk(layer, args[0], call, path + "/")
        return call(layer, path, *args, **kwargs)

    if isinstance(model, keras.Sequential):
        for layer in model.layers:
            value = step(layer, value)
        return value
    if not hasattr(model, "_run_through_graph"):
        raise ExplainError(
            f"{model.name!r} is a subclassed model: its layers' outputs cannot be reached. Rebuild it with the "
            "Functional API or keras.Sequential to explain it."
        )
    out = model._run_through_graph([value], operation_fn=lambda op: op, call_fn=step)
    return out[0] if isinstance(out, (list, tuple)) and len(out) == 1 else out
