"""A registry of explanation methods: name -> one uniform function, and which controls it needs.

Every method is ``explain(request) -> Explanation``: it reads what it needs from the
``Request`` (model, input, layer, channel, neuron position, target class, example set) and
returns the raw arrays of the ``cnnlib.interpret`` function it wraps (``arrays``, what tests
compare) and the panels to draw (``panels``). ``needs`` names the controls it reads, so a user
interface (``cnnlib.explore.app``) can enable just those.

The methods come from the method table (``cnnlib.methods``): each is registered with the adapter of its kind
(``by_kind``), or with a view of its own (``OWN_VIEWS``). A method of your own, outside the table, is one line,
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
from cnnlib._tensorflow import keras
from cnnlib.interpret.feature_maps import feature_maps
from cnnlib.interpret.gradcam import grad_cam, guided_grad_cam, upsample_maps
from cnnlib.interpret.guided_backprop import guided_backprop
from cnnlib.interpret.patches import argmax_patches, channel_maxima, top_k_patches
from cnnlib.models.receptive_field import dependency_boxes

CONTROLS = ("layer", "channel", "position", "target", "examples")  # what a method may need
Box = tuple[int, int, int, int]  # (top, left, bottom, right) in input pixels, half-open


@dataclass
class Request:
    """One explanation to compute: one image, with every control's current value.

    ``inputs`` (1, H, W, C) float32 is what the model takes; ``image`` (H, W, 3) uint8 is what
    is shown. ``position`` None means the channel's argmax. ``examples`` / ``example_images``
    (M, H, W, C) / (M, H, W, 3) are the set top-k patches search (the training split).
    ``memo`` is owned by the caller and lives as long as the model and the example set do: a
    method may keep work there that depends on nothing else (e.g. per-layer channel maxima).
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
    activations: np.ndarray | None = None  # (h, w, C) of ``layer`` for this image, if the caller has them
    memo: dict = field(default_factory=dict)


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


def _require(request: Request, *names: str) -> None:
    missing = [n for n in names if getattr(request, n) is None]
    if missing:
        raise ValueError(f"This method needs {', '.join(missing)}; none was given.")


def layer_activations(request: Request) -> np.ndarray:
    """(h, w, C) activations of ``request.layer`` for the image (the caller's copy when given)."""
    if request.activations is None:
        request.activations = feature_maps(request.model, request.inputs[:1], [request.layer])[request.layer][0]
    return request.activations


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
    """(N, H, W) maps on the input grid; maps at a layer's resolution are upsampled (aligned) and scaled."""
    if maps.shape[-2:] == request.inputs.shape[1:3]:
        return maps
    return upsample_maps(maps, request.model, request.layer)


def class_heatmap(fn: Callable[..., np.ndarray], layer: bool = True, **kwargs) -> Callable[[Request], Explanation]:
    """Adapter for ``fn(model, inputs, target, layer_name=layer, **kwargs) -> (N, H, W)`` class maps."""

    def explain(request: Request) -> Explanation:
        _require(request, "target", *(("layer",) if layer else ()))
        extra = {"layer_name": request.layer} if layer else {}
        raw = np.asarray(fn(request.model, request.inputs, request.target, **extra, **kwargs))
        heat = _on_input_grid(raw, request)[0]
        where = f" at {request.layer}" if layer else ""
        return Explanation({fn.__name__: raw}, (Panel(f"{fn.__name__}{where}", "heat", heat),))

    explain.__doc__ = f"{fn.__name__} for the target class, over the image."
    return explain


def class_gradient(fn: Callable[..., np.ndarray], **kwargs) -> Callable[[Request], Explanation]:
    """Adapter for ``fn(model, inputs, target, **kwargs) -> (N, H, W, C)`` input-gradient maps."""

    def explain(request: Request) -> Explanation:
        _require(request, "target")
        raw = np.asarray(fn(request.model, request.inputs, request.target, **kwargs))
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
        "(explain(request) -> Explanation) to OWN_VIEWS."
    )


# ----------------------------------------------------------------------------- the existing methods


def explain_feature_map(request: Request) -> Explanation:
    """One channel's feature map; the chosen neuron's receptive-field box and its guided backprop."""
    _require(request, "layer", "channel")
    row, col = neuron(request)
    acts = layer_activations(request)
    box = dependency_boxes(request.model, request.layer)(row, col)
    guided = guided_backprop(request.model, request.inputs[:1], request.layer, request.channel, positions=[(row, col)])
    value = acts[row, col, request.channel]
    return Explanation(
        {"feature_map": acts[..., request.channel], "box": np.asarray(box), "guided_backprop": guided},
        (
            Panel(
                f"neuron ({row}, {col}): field {box[2] - box[0]}x{box[3] - box[1]} px", "image", request.image, (box,)
            ),
            Panel(f"{request.layer} channel {request.channel}", "map", acts[..., request.channel], marker=(row, col)),
            Panel("guided backprop of that neuron", "gradient", guided[0]),
        ),
        f"activation {value:.3g} at ({row}, {col}); box rows {box[0]}-{box[2] - 1}, cols {box[1]}-{box[3] - 1}",
    )


def explain_all_channels(request: Request) -> Explanation:
    """Every channel of the layer (up to 64), each on its own colour scale."""
    _require(request, "layer")
    acts = layer_activations(request)
    shown = acts[..., :64]
    title = f"{request.layer}: {acts.shape[-1]} channels" + (" (first 64 shown)" if acts.shape[-1] > 64 else "")
    return Explanation(
        {"feature_maps": acts},
        (Panel(title, "grid", shown),),
        f"{100 * float((acts == 0).mean()):.0f}% of values are zero",
    )


def explain_argmax_patch(request: Request) -> Explanation:
    """The reference's method: the channel's argmax neuron in this image and its input patch."""
    _require(request, "layer", "channel")
    check_channel(request)
    patch = argmax_patches(request.model, request.inputs[:1], request.layer, [request.channel])[0]
    crop = patch.crop(request.image[None])
    return Explanation(
        {"box": np.asarray(patch.box), "activation": np.float32(patch.activation)},
        (
            Panel(
                f"{request.layer} ch {request.channel} argmax ({patch.row}, {patch.col})",
                "image",
                request.image,
                (patch.box,),
            ),
            Panel(f"patch {crop.shape[0]}x{crop.shape[1]} px", "tiles", crop[None]),
        ),
        f"activation {patch.activation:.3g}",
    )


def explain_top_patches(request: Request) -> Explanation:
    """The 9 example images where the channel fires most, each cropped to its neuron's box."""
    _require(request, "layer", "channel", "examples", "example_images")
    check_channel(request)
    key = ("channel_maxima", request.layer)
    if key not in request.memo:
        request.memo[key] = channel_maxima(request.model, request.examples, request.layer)
    patches = top_k_patches(
        request.model, request.examples, request.layer, [request.channel], k=9, maxima=request.memo[key]
    )[request.channel]
    crops = [p.crop(request.example_images) for p in patches]
    size = max(max(c.shape[:2]) for c in crops)
    tiles = np.zeros((len(crops), size, size, 3), np.uint8)
    for tile, crop in zip(tiles, crops):
        tile[: crop.shape[0], : crop.shape[1]] = crop
    return Explanation(
        {
            "images": np.asarray([p.image for p in patches]),
            "boxes": np.asarray([p.box for p in patches]),
            "activations": np.asarray([p.activation for p in patches], np.float32),
        },
        (Panel(f"top-9 of {len(request.examples)} examples, {request.layer} ch {request.channel}", "tiles", tiles),),
        "activations " + ", ".join(f"{p.activation:.3g}" for p in patches),
    )


def explain_guided_backprop(request: Request) -> Explanation:
    """Guided backpropagation from one neuron (the chosen position, or the channel's argmax)."""
    _require(request, "layer", "channel")
    row, col = neuron(request)
    guided = guided_backprop(request.model, request.inputs[:1], request.layer, request.channel, positions=[(row, col)])
    box = dependency_boxes(request.model, request.layer)(row, col)
    return Explanation(
        {"guided_backprop": guided, "box": np.asarray(box)},
        (
            Panel(f"{request.layer} ch {request.channel} at ({row}, {col})", "image", request.image, (box,)),
            Panel("guided backprop", "gradient", guided[0]),
        ),
    )


def explain_grad_cam(request: Request) -> Explanation:
    """Grad-CAM of the target class at the layer (aligned upsampling), over the image."""
    _require(request, "layer", "target")
    n_classes = int(request.model.outputs[0].shape[-1])  # every class in one call: one compiled graph per layer,
    cams = grad_cam(request.model, request.inputs[:1], list(range(n_classes)), request.layer)  # same cost as one
    cam = cams[:, request.target]
    return Explanation({"grad_cam": cam}, (Panel(f"Grad-CAM at {request.layer}", "heat", cam[0]),))


def explain_guided_grad_cam(request: Request) -> Explanation:
    """Guided Grad-CAM: guided backprop of the class score times the Grad-CAM map."""
    _require(request, "layer", "target")
    maps = guided_grad_cam(request.model, request.inputs[:1], request.target, request.layer)
    return Explanation({"guided_grad_cam": maps}, (Panel(f"guided Grad-CAM at {request.layer}", "gradient", maps[0]),))


# The explorer's own views of a layer (not attribution methods), then every method of the method table that reads a
# control, in the table's order: by its kind, unless a view of its own above shows more (a neuron's box, every
# class in one call).
register("feature map + neuron", explain_feature_map, ("layer", "channel", "position"))
register("all channels", explain_all_channels, ("layer",))
register("argmax patch", explain_argmax_patch, ("layer", "channel"))
register("top-9 patches", explain_top_patches, ("layer", "channel", "examples"))
OWN_VIEWS = {
    "guided backprop": explain_guided_backprop,
    "Grad-CAM": explain_grad_cam,
    "guided Grad-CAM": explain_guided_grad_cam,
}
for _entry in methods.in_explorer():
    register(_entry.name, OWN_VIEWS.get(_entry.name) or by_kind(_entry), _entry.needs)
