"""Receptive-field arithmetic for conv/pool stacks: field size, jump (stride) and input boxes.

Generalises the reference's back-projection (neuron i of a layer with kernel k and stride s
sees inputs i*s .. i*s + k - 1, padding ignored) to "same" padding and dilation, as Keras
lays them out: for "same", the total padding is max((ceil(W/s) - 1) * s + k_eff - W, 0),
with the smaller half before (top/left).

Convention: the neuron at (row, col) of a layer covers input rows
``row * jump + offset .. row * jump + offset + size - 1`` (same for columns); ``offset`` is
<= 0 when padding reaches outside the image. Boxes are half-open: (top, left, bottom, right).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras

_CONV = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
_POOL = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


@dataclass(frozen=True)
class Field:
    """Receptive field of one layer's neurons in input pixels."""

    size: int  # side of the square field (pixels)
    jump: int  # distance in input pixels between neighbouring neurons (the cumulative stride)
    offset: int  # input coordinate of the first pixel seen by neuron 0 (negative inside padding)


@dataclass(frozen=True)
class Step:
    """Geometry of one spatial layer (square kernels and strides)."""

    name: str
    kernel: int  # effective kernel: dilation * (k - 1) + 1
    stride: int
    pad_before: int


def _steps(model: keras.Model, input_size: int) -> list[Step]:
    """Spatial layers of ``model`` in order, with their padding resolved for ``input_size``."""
    steps, width = [], input_size
    for layer in _spatial_layers(model):
        if isinstance(layer, _CONV):
            k, s = layer.kernel_size[0], layer.strides[0]
            k_eff = layer.dilation_rate[0] * (k - 1) + 1
        else:
            k_eff, s = layer.pool_size[0], layer.strides[0]
        if layer.padding == "same":
            out = math.ceil(width / s)
            pad = max((out - 1) * s + k_eff - width, 0) // 2
        else:
            out, pad = (width - k_eff) // s + 1, 0
        steps.append(Step(layer.name, k_eff, s, pad))
        width = out
    return steps


def _spatial_layers(model: keras.Model):
    """Conv and pooling layers in call order, looking inside nested models."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _spatial_layers(layer)
        elif isinstance(layer, _CONV + _POOL):
            yield layer


def receptive_field(model: keras.Model, layer_name: str, input_size: int | None = None) -> Field:
    """Field (size, jump, offset) of the neurons of ``layer_name`` for a square input of ``input_size``."""
    input_size = input_size or model.input.shape[1]
    size, jump, offset = 1, 1, 0
    for step in _steps(model, input_size):
        size += (step.kernel - 1) * jump
        offset -= step.pad_before * jump
        jump *= step.stride
        if step.name == layer_name:
            return Field(size, jump, offset)
    raise ValueError(f"{layer_name!r} is not a convolution or pooling layer of model {model.name!r}.")


def input_box(
    model: keras.Model, layer_name: str, row: int, col: int, input_size: int | None = None, clip: bool = True
) -> tuple[int, int, int, int]:
    """Input pixels seen by neuron (row, col) of ``layer_name``: (top, left, bottom, right), half-open.

    With ``clip`` the box is cut to the image; without it, it may extend into the padding.
    """
    input_size = input_size or model.input.shape[1]
    field = receptive_field(model, layer_name, input_size)
    top, left = row * field.jump + field.offset, col * field.jump + field.offset
    box = (top, left, top + field.size, left + field.size)
    if clip:
        box = (max(box[0], 0), max(box[1], 0), min(box[2], input_size), min(box[3], input_size))
    return box


def reference_projection(kernels_strides: list[tuple[int, int]], row: int, col: int) -> tuple[int, int, int, int]:
    """The reference report's back-projection, layer by layer (no padding): a box as above.

    ``kernels_strides`` lists (kernel, stride) from the input up to the layer of the neuron.
    A neuron (i, j) of a layer sees (i*s .. i*s + k - 1) of the layer below; repeat downwards.
    """
    top, left, bottom, right = row, col, row, col  # inclusive bounds at the top layer
    for kernel, stride in reversed(kernels_strides):
        top, left = top * stride, left * stride
        bottom, right = bottom * stride + kernel - 1, right * stride + kernel - 1
    return top, left, bottom + 1, right + 1
