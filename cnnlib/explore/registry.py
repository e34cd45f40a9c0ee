"""A registry of explanation methods: name -> one uniform function, and which controls it needs.

Every method is ``explain(request) -> Explanation``: it reads what it needs from the
``Request`` (model, input, layer, channel, neuron position, target class, example set) and
returns the raw arrays of the ``cnnlib.interpret`` function it wraps (``arrays``, what tests
compare) and the panels to draw (``panels``). ``needs`` names the controls it reads, so a user
interface (``cnnlib.explore.app``) can enable just those. Every computation goes through
``request.work.get(key, kind, compute)`` (``cnnlib.explore.work``): kept for the image, counted, timed.

The methods come from the method table (``cnnlib.methods``): ``cnnlib.explore.views`` registers each with the
adapter of its kind (``by_kind``), or with a view of its own (``views.OWN_VIEWS``), after the explorer's own views
of a layer. A method of your own, outside the table, is one line,
with an adapter for the two usual shapes of map::

    register("my CAM", class_heatmap(my_cam), needs=("layer", "target"))
    register("my gradient", class_gradient(my_gradient), needs=("target",))

``class_heatmap(fn)`` wraps ``fn(model, inputs, target, layer_name=layer) -> (N, H, W)``
(maps at the layer's resolution are upsampled along the receptive fields, then scaled to
[0, 1]); ``class_gradient(fn)`` wraps ``fn(model, inputs, target) -> (N, H, W, C)``.
Pass ``layer=False`` to ``class_heatmap`` for a method without a layer; extra keyword
arguments are forwarded to ``fn``. Anything else: write ``explain(request)`` yourself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from cnnlib import interpret, methods
from cnnlib.backend import keras
from cnnlib.explore.work import ImageWork
from cnnlib.interpret.feature_maps import feature_maps
from cnnlib.interpret.gradcam import upsample_maps
from cnnlib.models.receptive_field import dependency_boxes

CONTROLS = ("layer", "channel", "position", "target", "examples")  # what a method may need
Box = tuple[int, int, int, int]  # (top, left, bottom, right) in input pixels, half-open


@dataclass
class Request:
    """One explanation to compute: one image, with every control's current value.

    ``inputs`` (1, H, W, C) float32 is what the model takes; ``image`` (H, W, 3) uint8 is what
    is shown. ``position`` None means the channel's argmax. ``examples`` / ``example_images``
    (M, H, W, C) / (M, H, W, 3) are the set top-k patches search (the training split).
    ``work`` keeps what is computed for this image on this model with its current weights (the caller opens a
    new one when any of them changes); ``model_work`` keeps what depends on the model, its weights and the
    example set only (e.g. per-layer channel maxima). Both default to fresh, empty ones.
    """

    model: keras.Model
    inputs: np.ndarray
    image: np.ndarray
    layer: str | None = None
    channel: int | None = None
    position: tuple[int, int] | None = None
    target: int | None = None
    examples: np.ndarray | None = None
    example_images: np.ndarray | None = None
    work: ImageWork = field(default_factory=ImageWork)
    model_work: ImageWork = field(default_factory=ImageWork)


@dataclass(frozen=True)
class Panel:
    """One picture: ``kind`` says how to draw ``array``.

    "image": uint8 (H, W, 3); "heat": (H, W) in [0, 1] over the request's image; "gradient":
    signed (H, W, C) input gradient; "map": (h, w) activations; "grid": (h, w, C) one tile per
    channel; "tiles": (K, h, w, 3) uint8 crops. ``boxes`` are drawn on "image"/"heat" panels,
    ``marker`` (row, col) on a "map".
    """

    title: str
    kind: str
    array: np.ndarray
    boxes: tuple[Box, ...] = ()
    marker: tuple[int, int] | None = None


@dataclass(frozen=True)
class Explanation:
    """Raw arrays from ``cnnlib.interpret`` (by name), the panels to draw, and a line of text."""

    arrays: dict[str, np.ndarray]
    panels: tuple[Panel, ...]
    note: str = ""


@dataclass(frozen=True)
class Method:
    name: str
    explain: Callable[[Request], Explanation]
    needs: frozenset[str]
    description: str = ""


METHODS: dict[str, Method] = {}


def register(
    name: str, explain: Callable[[Request], Explanation], needs: Sequence[str] = (), description: str = ""
) -> Method:
    """Add (or replace) a method under ``name``; ``needs`` is a subset of ``CONTROLS``."""
    unknown = set(needs) - set(CONTROLS)
    if unknown:
        raise ValueError(f"Method {name!r} needs unknown controls {sorted(unknown)}; choose from {CONTROLS}.")
    METHODS[name] = Method(name, explain, frozenset(needs), description or (explain.__doc__ or "").strip())
    return METHODS[name]


def method(name: str) -> Method:
    """The registered method ``name`` (KeyError listing the registered names otherwise)."""
    if name not in METHODS:
        raise KeyError(f"No explanation method {name!r}; registered: {', '.join(METHODS)}.")
    return METHODS[name]


def method_names() -> list[str]:
    """Registered method names, in registration order."""
    return list(METHODS)


# ----------------------------------------------------------------------------- helpers


def require(request: Request, *names: str) -> None:
    missing = [n for n in names if getattr(request, n) is None]
    if missing:
        raise ValueError(f"This method needs {', '.join(missing)}; none was given.")


def layer_activations(request: Request) -> np.ndarray:
    """(h, w, C) activations of ``request.layer`` for the image (one forward pass, the first time)."""
    layer = request.layer
    return request.work.get(
        ("activations", layer), "forward", lambda: feature_maps(request.model, request.inputs[:1], [layer])[layer][0]
    )


def neuron_box(request: Request, row: int, col: int) -> Box:
    """The dependency box of neuron (row, col) of ``request.layer`` (the layer's box function built once)."""
    boxes = request.model_work.get(
        ("boxes", request.layer), "receptive fields", lambda: dependency_boxes(request.model, request.layer)
    )
    return boxes(row, col)


def _settings_key(kwargs: dict) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in kwargs.items()))


def check_channel(request: Request) -> np.ndarray:
    """The layer's activations (h, w, C); ValueError naming the layer if the channel does not exist."""
    acts = layer_activations(request)
    channels = acts.shape[-1]
    if not 0 <= request.channel < channels:
        raise ValueError(
            f"Layer {request.layer!r} has {channels} channels (0-{channels - 1}); "
            f"channel {request.channel} does not exist."
        )
    return acts


def neuron(request: Request) -> tuple[int, int]:
    """(row, col) of the requested neuron: ``position``, or the channel's argmax in this image.

    Raises ValueError naming the layer when the channel or position does not exist.
    """
    acts = check_channel(request)
    h, w, _ = acts.shape
    if request.position is None:
        row, col = np.unravel_index(int(np.argmax(acts[..., request.channel])), (h, w))
        return int(row), int(col)
    row, col = request.position
    if not (0 <= row < h and 0 <= col < w):
        raise ValueError(f"Layer {request.layer!r} is {h} x {w}; position ({row}, {col}) is outside it.")
    return int(row), int(col)


def _on_input_grid(maps: np.ndarray, request: Request) -> np.ndarray:
    """(N, H, W) maps on the input grid; maps at a layer's resolution are upsampled (the default rule) and scaled."""
    if maps.shape[-2:] == request.inputs.shape[1:3]:
        return maps
    return upsample_maps(maps, request.model, request.layer)


def class_heatmap(fn: Callable[..., np.ndarray], layer: bool = True, **kwargs) -> Callable[[Request], Explanation]:
    """Adapter for ``fn(model, inputs, target, layer_name=layer, **kwargs) -> (N, H, W)`` class maps (kept per
    layer and target: returning to a target redraws without a pass)."""

    def explain(request: Request) -> Explanation:
        require(request, "target", *(("layer",) if layer else ()))
        extra = {"layer_name": request.layer} if layer else {}
        key = (fn.__name__, request.layer if layer else None, request.target, _settings_key(kwargs))
        raw = request.work.get(
            key, fn.__name__, lambda: np.asarray(fn(request.model, request.inputs, request.target, **extra, **kwargs))
        )
        heat = _on_input_grid(raw, request)[0]
        where = f" at {request.layer}" if layer else ""
        return Explanation({fn.__name__: raw}, (Panel(f"{fn.__name__}{where}", "heat", heat),))

    explain.__doc__ = f"{fn.__name__} for the target class, over the image."
    return explain


def class_gradient(fn: Callable[..., np.ndarray], **kwargs) -> Callable[[Request], Explanation]:
    """Adapter for ``fn(model, inputs, target, **kwargs) -> (N, H, W, C)`` input-gradient maps (kept per target)."""

    def explain(request: Request) -> Explanation:
        require(request, "target")
        key = (fn.__name__, request.target, _settings_key(kwargs))
        raw = request.work.get(
            key, fn.__name__, lambda: np.asarray(fn(request.model, request.inputs, request.target, **kwargs))
        )
        return Explanation({fn.__name__: raw}, (Panel(fn.__name__, "gradient", raw[0]),))

    explain.__doc__ = f"{fn.__name__} for the target class (an input gradient)."
    return explain


def score_drop_heatmap(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """A "score drop" method (e.g. ``occlusion``) whose (N, H, W) drops are divided by each map's largest drop, for
    a [0, 1] heat panel."""

    def heatmap(model: keras.Model, inputs: np.ndarray, target: int, **kwargs) -> np.ndarray:
        drops = fn(model, inputs, target, **kwargs)
        peak = drops.reshape(len(drops), -1).max(axis=1)
        return drops / np.where(peak > 0, peak, 1)[:, None, None]

    heatmap.__name__ = f"{fn.__name__}_heatmap"
    return heatmap


def by_kind(method: methods.MethodEntry) -> Callable[[Request], Explanation]:
    """The explorer's adapter for a method-table entry, from its kind (with its ``explorer_settings``)."""
    function = interpret.function_of(method)
    if method.kind == "class map":
        return class_heatmap(function, **method.explorer_settings)
    if method.kind == "input attribution":
        return class_gradient(function, **method.explorer_settings)
    if method.kind == "score drop":
        return class_heatmap(score_drop_heatmap(function), layer=False, **method.explorer_settings)
    raise ValueError(
        f"method {method.name!r} is of kind {method.kind!r}: the explorer has no adapter for it; add a view "
        "(explain(request) -> Explanation) to cnnlib.explore.views.OWN_VIEWS."
    )
