"""Receptive fields of any conv net: geometric field (size, jump, offset) and exact input boxes.

Generalises the reference's back-projection (neuron i of a layer with kernel k and stride s
sees inputs i*s .. i*s + k - 1, padding ignored) to "same" padding, dilation, explicit
``ZeroPadding2D`` / ``Cropping2D``, branches that merge (ResNet's Add, DenseNet's Concatenate)
and nested models, as Keras lays them out: for "same", the total padding is
max((ceil(W/s) - 1) * s + k_eff - W, 0), with the smaller half before (top/left).

Two answers per neuron, per axis, propagated forward through the layer graph:

- the **geometric field**: neuron i covers ``i * jump + offset .. + size - 1``, padding
  included (``offset`` < 0 when it reaches outside the image). Its centre is where the
  neuron "looks"; Grad-CAM's aligned upsampling uses it.
- the **exact dependency box** (``input_box``): the smallest box holding every input pixel
  the neuron depends on. Taps that fall in padding depend on nothing, so at the border the
  box is smaller than the clipped geometric field; pixels past the last valid-pooling window
  are never seen. Global paths (squeeze-and-excitation, attention over the whole map) make
  every later neuron depend on the whole image, and the box says so.

Boxes are half-open: (top, left, bottom, right).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cnnlib.backend import keras
from cnnlib.models.model_graph import ExplainError, resolve_layer, walk

_CONV = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
_POOL = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
# Layers that act on each position separately (or merge same-shaped maps position by position).
_POINTWISE = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.PReLU,
    keras.layers.ELU,
    keras.layers.Softmax,
    keras.layers.Dropout,
    keras.layers.SpatialDropout2D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.Rescaling,
    keras.layers.Normalization,
    keras.layers.Identity,
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Concatenate,
    keras.layers.Dense,
)
# Layers whose output has no spatial positions left (or scrambles them).
_GLOBAL = (
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.Flatten,
    keras.layers.Reshape,
)
_NOTHING = np.iinfo(np.int64).max  # lo of a position that depends on no input pixel (padding)


@dataclass(frozen=True)
class Field:
    """Receptive field of one layer's neurons in input pixels, along one axis."""

    size: int  # side of the field (pixels)
    jump: int  # distance in input pixels between neighbouring neurons (the cumulative stride)
    offset: int  # input coordinate of the first pixel seen by neuron 0 (negative inside padding)

    def centres(self, count: int) -> np.ndarray:
        """Input coordinates of the field centres of neurons 0..count-1: float (count,)."""
        return self.offset + (self.size - 1) / 2 + self.jump * np.arange(count)


@dataclass(frozen=True)
class _Axis:
    """One axis of a feature map: per-position dependency bounds and the geometric field."""

    lo: np.ndarray  # (n,) first input pixel each position depends on (_NOTHING if none)
    hi: np.ndarray  # (n,) last input pixel each position depends on (-1 if none)
    size: int
    jump: int
    offset: int
    spread: float = 0.0  # variance (pixels^2) of the effective field under uniform weights (Luo et al., 2016)

    @staticmethod
    def of_input(n: int) -> _Axis:
        return _Axis(np.arange(n), np.arange(n), 1, 1, 0)

    def window(self, kernel: int, stride: int, dilation: int, padding: str) -> _Axis:
        n, k_eff = len(self.lo), dilation * (kernel - 1) + 1
        if padding == "same":
            out = math.ceil(n / stride)
            pad = max((out - 1) * stride + k_eff - n, 0) // 2
        elif padding == "valid":
            out, pad = (n - k_eff) // stride + 1, 0
        else:
            raise ExplainError(f"Padding {padding!r} is not supported by the receptive-field calculation.")
        taps = np.arange(out)[:, None] * stride - pad + np.arange(kernel)[None, :] * dilation  # (out, kernel)
        valid = (taps >= 0) & (taps < n)
        safe = np.clip(taps, 0, n - 1)
        lo = np.where(valid, self.lo[safe], _NOTHING).min(axis=1)
        hi = np.where(valid, self.hi[safe], -1).max(axis=1)
        # a window of `kernel` equal taps, `dilation * jump` input pixels apart, adds the variance of that
        # discrete uniform distribution; variances of stacked windows add (the field is their convolution)
        spread = self.spread + (dilation * self.jump) ** 2 * (kernel**2 - 1) / 12
        return _Axis(
            lo, hi, self.size + (k_eff - 1) * self.jump, self.jump * stride, self.offset - pad * self.jump, spread
        )

    def pad(self, before: int, after: int) -> _Axis:
        lo = np.concatenate([np.full(before, _NOTHING), self.lo, np.full(after, _NOTHING)])
        hi = np.concatenate([np.full(before, -1), self.hi, np.full(after, -1)])
        return _Axis(lo, hi, self.size, self.jump, self.offset - before * self.jump, self.spread)

    def crop(self, before: int, after: int) -> _Axis:
        end = len(self.lo) - after
        return _Axis(
            self.lo[before:end],
            self.hi[before:end],
            self.size,
            self.jump,
            self.offset + before * self.jump,
            self.spread,
        )

    def everything(self, n_input: int) -> _Axis:
        """Every position depends on the whole input axis (a global path joined in); geometry unchanged."""
        return _Axis(
            np.zeros_like(self.lo), np.full_like(self.hi, n_input - 1), self.size, self.jump, self.offset, self.spread
        )


def _merge(axes: list[_Axis], name: str) -> _Axis:
    """Positions merged one to one (Add, Concatenate along channels): union of dependencies and fields."""
    if len({len(a.lo) for a in axes}) != 1 or len({a.jump for a in axes}) != 1:
        raise ExplainError(f"Layer {name!r} merges feature maps of different resolution or stride.")
    start = min(a.offset for a in axes)
    end = max(a.offset + a.size for a in axes)
    lo = np.min([a.lo for a in axes], axis=0)
    hi = np.max([a.hi for a in axes], axis=0)
    return _Axis(lo, hi, end - start, axes[0].jump, start, max(a.spread for a in axes))  # the widest branch's field


GLOBAL = "global"  # stands for a tensor without spatial positions (after global pooling, Flatten, Dense)


class _Map:
    """Geometry of a spatial feature map: its rows and columns axes."""

    __slots__ = ("rows", "cols")

    def __init__(self, rows: _Axis, cols: _Axis):
        self.rows, self.cols = rows, cols

    def axes(self) -> tuple[_Axis, _Axis]:
        return self.rows, self.cols


def _step(layer, path: str, *args, input_size: tuple[int, int], **kwargs):
    """The (rows, cols) geometry of ``layer``'s output from its inputs' geometry (or GLOBAL)."""
    inputs = [a for a in keras.tree.flatten(args) if isinstance(a, _Map) or a is GLOBAL]
    spatial = [a.axes() for a in inputs if a is not GLOBAL]
    if not spatial or isinstance(layer, _GLOBAL):
        return GLOBAL
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise ExplainError(f"Layer {path!r} is channels_first; the receptive-field calculation needs channels_last.")
    if isinstance(layer, _CONV + _POOL):
        (rows, cols), is_conv = spatial[0], isinstance(layer, _CONV)
        kernel = layer.kernel_size if is_conv else layer.pool_size
        dilation = layer.dilation_rate if is_conv else (1, 1)
        return _Map(
            *(
                axis.window(kernel[i], layer.strides[i], dilation[i], layer.padding)
                for i, axis in enumerate((rows, cols))
            )
        )
    if isinstance(layer, keras.layers.ZeroPadding2D):
        return _Map(*(axis.pad(*layer.padding[i]) for i, axis in enumerate(spatial[0])))
    if isinstance(layer, keras.layers.Cropping2D):
        return _Map(*(axis.crop(*layer.cropping[i]) for i, axis in enumerate(spatial[0])))
    if isinstance(layer, _POINTWISE):
        merged = tuple(_merge([s[i] for s in spatial], path) for i in range(2))
        if len(spatial) < len(inputs):  # a global input (e.g. squeeze-and-excitation weights) joins in
            merged = tuple(axis.everything(input_size[i]) for i, axis in enumerate(merged))
        return _Map(*merged)
    raise ExplainError(
        f"Layer {path!r} ({type(layer).__name__}) is not supported by the receptive-field calculation "
        "(supported: convolutions, pooling, zero padding, cropping and position-wise layers)."
    )


def _geometry(model: keras.Model, layer_name: str, input_size: int | tuple[int, int] | None):
    """(path, (rows, cols) axes) of ``layer_name`` for an input of ``input_size`` (default: the model's)."""
    path = resolve_layer(model, layer_name)
    if input_size is None:
        input_size = tuple(model.inputs[0].shape[1:3])
    elif isinstance(input_size, int):
        input_size = (input_size, input_size)
    if None in input_size:
        raise ExplainError(f"Model {model.name!r} takes images of any size: pass input_size=(height, width).")
    found = {}

    def call(layer, layer_path, *args, **kwargs):
        out = _step(layer, layer_path, *args, input_size=input_size, **kwargs)
        found[layer_path] = out
        return out

    walk(model, _Map(_Axis.of_input(input_size[0]), _Axis.of_input(input_size[1])), call)
    if found.get(path, GLOBAL) is GLOBAL:
        raise ValueError(
            f"{layer_name!r} is not a layer with a spatial output (h, w, channels) in model "
            f"{model.name!r}, so its neurons have no receptive field."
        )
    return path, found[path].axes()


def receptive_field(model: keras.Model, layer_name: str, input_size: int | None = None, axis: int = 0) -> Field:
    """Geometric field (size, jump, offset) of ``layer_name``'s neurons along rows (axis 0) or columns (1)."""
    a = _geometry(model, layer_name, input_size)[1][axis]
    return Field(a.size, a.jump, a.offset)


def field_centres(model: keras.Model, layer_name: str, input_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Input coordinates of the field centres of every row and every column of ``layer_name``: (h,), (w,)."""
    rows, cols = _geometry(model, layer_name, input_size)[1]
    return tuple(Field(a.size, a.jump, a.offset).centres(len(a.lo)) for a in (rows, cols))


@dataclass(frozen=True)
class EffectiveField:
    """Where the neurons of a layer look along one axis, per position: float centres, exact bounds, Gaussian width."""

    centres: np.ndarray  # (n,) input coordinate of each neuron's field centre
    first: np.ndarray  # (n,) first input pixel each neuron depends on (> last when it sees only padding)
    last: np.ndarray  # (n,) last input pixel each neuron depends on
    sigma: float  # standard deviation (pixels) of the effective receptive field under uniform weights


def effective_fields(
    model: keras.Model, layer_name: str, input_size: int | None = None
) -> tuple[EffectiveField, EffectiveField]:
    """Rows and columns of ``layer_name``: each neuron's field centre, exact pixel bounds and effective-field width.

    The width is the Gaussian that the effective receptive field approaches when every window weighs its taps equally
    (Luo et al., 2016): each convolution or pooling window of k taps spaced d input pixels apart adds the variance
    d^2 (k^2 - 1) / 12, and the variances of stacked windows add. Branches that merge keep the widest.

    Args:
        model: any model ``receptive_field`` supports.
        layer_name: path or unique name of a layer with a spatial output.
        input_size: the input side (default: the model's).

    Returns:
        (rows, cols): ``EffectiveField`` each, arrays of length h and w.
    """
    rows, cols = _geometry(model, layer_name, input_size)[1]
    return tuple(
        EffectiveField(
            Field(a.size, a.jump, a.offset).centres(len(a.lo)), a.lo.copy(), a.hi.copy(), math.sqrt(a.spread)
        )
        for a in (rows, cols)
    )


def dependency_boxes(model: keras.Model, layer_name: str, input_size: int | None = None):
    """Exact boxes of every neuron as a function: (row, col) -> (top, left, bottom, right), half-open.

    A neuron that sees only padding depends on no pixel: its box is empty, (0, 0, 0, 0).
    """
    rows, cols = _geometry(model, layer_name, input_size)[1]

    def box(row: int, col: int) -> tuple[int, int, int, int]:
        if rows.lo[row] > rows.hi[row] or cols.lo[col] > cols.hi[col]:
            return (0, 0, 0, 0)  # the neuron sees only padding: it depends on no pixel
        return (int(rows.lo[row]), int(cols.lo[col]), int(rows.hi[row]) + 1, int(cols.hi[col]) + 1)

    return box


def input_box(
    model: keras.Model, layer_name: str, row: int, col: int, input_size: int | None = None, clip: bool = True
) -> tuple[int, int, int, int]:
    """Input pixels seen by neuron (row, col) of ``layer_name``: (top, left, bottom, right), half-open.

    With ``clip`` (default) the exact dependency box: the smallest box holding every pixel the
    neuron depends on. Without it, the geometric field, which may extend into the padding.
    """
    if clip:
        return dependency_boxes(model, layer_name, input_size)(row, col)
    rows, cols = _geometry(model, layer_name, input_size)[1]
    top, left = row * rows.jump + rows.offset, col * cols.jump + cols.offset
    return (top, left, top + rows.size, left + cols.size)


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
