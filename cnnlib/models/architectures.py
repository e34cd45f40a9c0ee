"""The custom architectures, declared once as data; Keras models and Tables 3-5 both come from it.

An architecture is a tuple of ``LayerSpec`` rows (op, kernel, filters, stride,
padding). ``build_model`` turns it into a functional Keras model whose layer names
match the table (``conv1``, ``pool1``, ...), with a ``logits`` dense layer before the
softmax so that Grad-CAM can read class scores without softmax saturation.
``feature_map_table`` writes the report's table, calculation column included.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from cnnlib import config
from cnnlib.backend import keras


@dataclass(frozen=True)
class LayerSpec:
    """One row of an architecture table. ``filters`` is None for pooling layers."""

    op: str  # "conv" or "pool" (max pooling)
    kernel: int
    stride: int
    filters: int | None = None
    padding: str = "valid"  # "valid" (P = 0) or "same"


def _conv(kernel: int, filters: int, stride: int = 1) -> LayerSpec:
    return LayerSpec("conv", kernel, stride, filters)


def _pool(kernel: int = 3, stride: int = 2) -> LayerSpec:
    return LayerSpec("pool", kernel, stride)


_ARCH1 = (_conv(11, 8, 4), _pool(), _conv(5, 16), _pool())
ARCHITECTURES: dict[str, tuple[LayerSpec, ...]] = {
    "arch1": _ARCH1,
    "arch2": _ARCH1 + (_conv(3, 32), _pool()),
    "arch3": _ARCH1 + (_conv(3, 32), _conv(3, 64), _pool()),
}

# variant name -> (architecture, variant whose trained weights seed the shared layers)
# The transfer chain grows one network: arch1 -> arch2_transfer -> arch3_transfer.
VARIANTS: dict[str, tuple[str, str | None]] = {
    "arch1": ("arch1", None),
    "arch2": ("arch2", None),
    "arch2_transfer": ("arch2", "arch1"),
    "arch3": ("arch3", None),
    "arch3_transfer": ("arch3", "arch2_transfer"),
}


def layer_names(specs: Sequence[LayerSpec]) -> list[str]:
    """``conv1, pool1, conv2, ...``: each op numbered by its own count."""
    counts: dict[str, int] = {}
    names = []
    for spec in specs:
        counts[spec.op] = counts.get(spec.op, 0) + 1
        names.append(f"{spec.op}{counts[spec.op]}")
    return names


def output_size(width: int, spec: LayerSpec) -> int:
    """W_out = floor((W - F + 2P) / S) + 1 for "valid" (P = 0); ceil(W / S) for "same"."""
    if spec.padding == "same":
        return math.ceil(width / spec.stride)
    return (width - spec.kernel) // spec.stride + 1


def build_model(
    architecture: str | Sequence[LayerSpec],
    n_classes: int = len(config.CLASSES),
    image_size: int = config.IMAGE_SIZE,
    name: str | None = None,
) -> keras.Model:
    """Functional model: uint8-range input -> /255 -> conv(ReLU)/max-pool stack -> flatten -> logits -> softmax."""
    specs = ARCHITECTURES[architecture] if isinstance(architecture, str) else tuple(architecture)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = keras.layers.Rescaling(1 / 255, name="rescale")(inputs)
    for spec, layer_name in zip(specs, layer_names(specs)):
        if spec.op == "conv":
            x = keras.layers.Conv2D(
                spec.filters,
                spec.kernel,
                strides=spec.stride,
                padding=spec.padding,
                activation="relu",
                name=layer_name,
            )(x)
        elif spec.op == "pool":
            x = keras.layers.MaxPooling2D(spec.kernel, spec.stride, padding=spec.padding, name=layer_name)(x)
        else:
            raise ValueError(f"Unknown op {spec.op!r} in architecture table; use 'conv' or 'pool'.")
    x = keras.layers.Flatten(name="flatten")(x)
    logits = keras.layers.Dense(n_classes, name="logits")(x)
    outputs = keras.layers.Activation("softmax", name="predictions")(logits)
    default_name = architecture if isinstance(architecture, str) else "custom"
    return keras.Model(inputs, outputs, name=name or default_name)


def feature_map_table(
    architecture: str | Sequence[LayerSpec],
    n_classes: int = len(config.CLASSES),
    image_size: int = config.IMAGE_SIZE,
) -> pd.DataFrame:
    """Tables 3-5: one row per layer with the output-size calculation written out and parameter counts.

    Columns: layer, op, kernel, filters, stride, pad, calculation, output, params.
    The flatten and dense rows show the classification head the reference left out.
    """
    specs = ARCHITECTURES[architecture] if isinstance(architecture, str) else tuple(architecture)
    width, channels = image_size, 3
    rows = []
    for spec, name in zip(specs, layer_names(specs)):
        out = output_size(width, spec)
        if spec.padding == "same":
            calc = f"ceil({width}/{spec.stride}) = {out}"
        else:
            numerator = width - spec.kernel
            core = f"({width} - {spec.kernel} + 2*0)/{spec.stride}"
            calc = f"{core} + 1 = {out}" if numerator % spec.stride == 0 else f"floor({core}) + 1 = {out}"
        filters = spec.filters if spec.op == "conv" else channels
        params = spec.kernel * spec.kernel * channels * filters + filters if spec.op == "conv" else 0
        rows.append(
            {
                "layer": name,
                "op": "conv" if spec.op == "conv" else "max pool",
                "kernel": f"{spec.kernel}x{spec.kernel}",
                "filters": spec.filters if spec.op == "conv" else "-",
                "stride": spec.stride,
                "pad": 0 if spec.padding == "valid" else "same",
                "calculation": calc,
                "output": f"{out}x{out}x{filters}",
                "params": params,
            }
        )
        width, channels = out, filters
    flat = width * width * channels
    rows.append(
        {
            "layer": "flatten",
            "op": "flatten",
            "kernel": "-",
            "filters": "-",
            "stride": "-",
            "pad": "-",
            "calculation": f"{width}*{width}*{channels} = {flat}",
            "output": str(flat),
            "params": 0,
        }
    )
    rows.append(
        {
            "layer": "logits",
            "op": "dense + softmax",
            "kernel": "-",
            "filters": "-",
            "stride": "-",
            "pad": "-",
            "calculation": f"{flat}*{n_classes} + {n_classes}",
            "output": str(n_classes),
            "params": flat * n_classes + n_classes,
        }
    )
    return pd.DataFrame(rows)
