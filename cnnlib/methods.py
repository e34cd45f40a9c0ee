"""The interpretability methods, one entry each: the single declaration every consumer reads.

An entry gives a method's display name (what the explorer, notebook 10 and the report show), its key (the name
of its ``cnnlib.interpret`` function, also its name in ``results/benchmarks.json`` and in test ids), its *kind*
(the shape of what the function returns, from which each consumer builds its adapter), the explorer controls it
needs, the settings that set its cost, and whether the method comparison runs it.

Declarations only, at the bottom of the data flow beside ``config``: no TensorFlow, so the report (which imports
none) reads the same table as the explorer; the layers that run methods get each function with
``cnnlib.interpret.function_of``.

Readers, each by kind (never by a method's name):

- ``cnnlib.explore.registry``: the explorer's methods, after its own views of a layer (feature map, patches);
- ``cnnlib.interpret.checks.comparison``: ``adapters()``, the compared methods in table order;
- ``cnnlib.report.method_tables``: the benchmark key of each row;
- ``benchmarks/bench_methods.py``: what it times;
- ``tests/test_method_table.py``: every entry follows the model's current weights; it also lists these readers.

Adding a method of an existing kind is its module, its entry here and its proof test; nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

KINDS = {
    "class map": "fn(model, inputs, targets, layer_name=...) -> (N, K, H, W) in [0, 1]: each target class's map "
    "at a layer, upsampled along the receptive fields to the input grid",
    "input attribution": "fn(model, inputs, targets) -> (N, K, H, W, C): a signed attribution per input pixel "
    "and colour channel for each target class",
    "score drop": "fn(model, inputs, targets) -> (N, K, H, W): how much each target class's score drops when the "
    "pixel's neighbourhood is hidden (units of the score)",
    "guided gradient": "fn(model, inputs, layer_name, channel, positions, weights) -> (N, H, W, C): guided "
    "backpropagation from one neuron, or (layer_name=None, weights=one-hot classes) from each image's class score",
    "guided class map": "fn(model, inputs, target, layer_name=...) -> (N, H, W, C): guided backprop times the "
    "class map (one target)",
    "feature visualisation": "fn(model, channel, layer_name, ...) -> image: an input optimised to excite a channel",
}


@dataclass(frozen=True)
class MethodEntry:
    """One method.

    Attributes:
        name: display name ("Grad-CAM++").
        key: the name of its ``cnnlib.interpret`` function ("grad_cam_plus_plus"), also its key in
            ``results/benchmarks.json`` and in test ids.
        kind: one of ``KINDS``.
        needs: the explorer controls it reads (``cnnlib.explore.registry.CONTROLS``); empty: not in the explorer.
        compared: whether notebook 10's comparison runs it (its maps become (N, H, W) for each image's target).
        comparison_settings: {keyword of ``function``: the ``comparison.adapters`` setting that sets it}, the
            cost settings notebook 10 reduces (and the report states).
        explorer_settings: keyword arguments the explorer passes (an interactive cost).
    """

    name: str
    key: str
    kind: str
    needs: tuple[str, ...] = ()
    compared: bool = False
    comparison_settings: Mapping[str, str] = field(default_factory=dict)
    explorer_settings: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"method {self.name!r}: kind {self.kind!r} is not one of {sorted(KINDS)}.")


TABLE: tuple[MethodEntry, ...] = (  # the comparison's and the explorer's order
    MethodEntry("Grad-CAM", "grad_cam", "class map", ("layer", "target"), compared=True),
    MethodEntry("guided Grad-CAM", "guided_grad_cam", "guided class map", ("layer", "target")),
    MethodEntry("Grad-CAM++", "grad_cam_plus_plus", "class map", ("layer", "target"), compared=True),
    MethodEntry("HiResCAM", "hires_cam", "class map", ("layer", "target"), compared=True),
    MethodEntry(
        "Score-CAM",
        "score_cam",
        "class map",
        ("layer", "target"),
        compared=True,
        comparison_settings={"channels": "scorecam_channels"},
        explorer_settings={"channels": 64},
    ),
    MethodEntry("LayerCAM", "layer_cam", "class map", ("layer", "target"), compared=True),
    MethodEntry("saliency", "saliency", "input attribution", ("target",), compared=True),
    MethodEntry(
        "SmoothGrad",
        "smooth_grad",
        "input attribution",
        ("target",),
        compared=True,
        comparison_settings={"samples": "smooth_samples", "seed": "seed"},
    ),
    MethodEntry(
        "Integrated Gradients",
        "integrated_gradients",
        "input attribution",
        ("target",),
        compared=True,
        comparison_settings={"steps": "ig_steps"},
    ),
    MethodEntry(
        "guided backprop", "guided_backprop", "guided gradient", ("layer", "channel", "position"), compared=True
    ),
    MethodEntry(
        "occlusion",
        "occlusion",
        "score drop",
        ("target",),
        compared=True,
        comparison_settings={"patch": "occlusion_patch", "stride": "occlusion_stride"},
    ),
    MethodEntry("activation maximisation", "activation_maximisation", "feature visualisation"),
)


def entry(name: str) -> MethodEntry:
    """The entry of the method called ``name`` (display name or key); KeyError listing every name otherwise."""
    for method in TABLE:
        if name in (method.name, method.key):
            return method
    raise KeyError(f"No method {name!r} in the method table; there are: {', '.join(m.name for m in TABLE)}.")


def compared() -> tuple[MethodEntry, ...]:
    """The methods notebook 10 compares, in table order."""
    return tuple(m for m in TABLE if m.compared)


def in_explorer() -> tuple[MethodEntry, ...]:
    """The methods the explorer offers (those that read at least one control), in table order."""
    return tuple(m for m in TABLE if m.needs)
