"""The explorer's own views: a layer's feature maps, its patches, a neuron's guided backpropagation, Grad-CAM of
every class at once; and the registration of every method the explorer offers.

Each view reads the arrays kept for the image (``request.work``, see ``cnnlib.explore.work``) and computes only
what is missing: a change of channel or neuron in a feature map, or of target class in Grad-CAM, redraws without
a pass; a new neuron's guided backpropagation is exactly one backward pass. Importing this module registers the
methods (``cnnlib.explore.state`` does).
"""

from __future__ import annotations

import numpy as np

from cnnlib import methods
from cnnlib.explore.registry import (
    Explanation,
    Panel,
    Request,
    by_kind,
    check_channel,
    layer_activations,
    neuron,
    neuron_box,
    register,
    require,
)
from cnnlib.interpret.gradcam import grad_cam, guided_grad_cam
from cnnlib.interpret.gradients import completeness, integrated_gradients
from cnnlib.interpret.guided_backprop import guided_backprop
from cnnlib.interpret.patches import argmax_patches, channel_maxima, top_k_patches


def explain_feature_map(request: Request) -> Explanation:
    """One channel's feature map and the chosen neuron's receptive-field box (from the layer's activations, kept
    for the image: a change of channel or neuron needs no new pass). The neuron's guided backpropagation is the
    "guided backprop" method."""
    require(request, "layer", "channel")
    row, col = neuron(request)
    acts = layer_activations(request)
    box = neuron_box(request, row, col)
    value = acts[row, col, request.channel]
    return Explanation(
        {"feature_map": acts[..., request.channel], "box": np.asarray(box)},
        (
            Panel(
                f"neuron ({row}, {col}): field {box[2] - box[0]}x{box[3] - box[1]} px", "image", request.image, (box,)
            ),
            Panel(f"{request.layer} channel {request.channel}", "map", acts[..., request.channel], marker=(row, col)),
        ),
        f"activation {value:.3g} at ({row}, {col}); box rows {box[0]}-{box[2] - 1}, cols {box[1]}-{box[3] - 1}",
    )


def explain_all_channels(request: Request) -> Explanation:
    """Every channel of the layer (up to 64), each on its own colour scale."""
    require(request, "layer")
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
    require(request, "layer", "channel")
    acts = check_channel(request)
    (patch,) = argmax_patches(
        request.model, request.inputs[:1], request.layer, [request.channel], activations=acts[None]
    )
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
    require(request, "layer", "channel", "examples", "example_images")
    check_channel(request)
    maxima = request.model_work.get(  # one pass over the example set per layer, whatever the image
        ("channel_maxima", request.layer),
        "example set",
        lambda: channel_maxima(request.model, request.examples, request.layer),
    )
    channel = request.channel
    patches = top_k_patches(request.model, request.examples, request.layer, [channel], k=9, maxima=maxima)[channel]
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
    """Guided backpropagation from one neuron (the chosen position, or the channel's argmax): one backward pass per
    neuron, kept for the image."""
    require(request, "layer", "channel")
    row, col = neuron(request)
    guided = request.work.get(
        ("guided_backprop", request.layer, request.channel, (row, col)),
        "backward",
        lambda: guided_backprop(
            request.model, request.inputs[:1], request.layer, request.channel, positions=[(row, col)]
        ),
    )
    box = neuron_box(request, row, col)
    return Explanation(
        {"guided_backprop": guided, "box": np.asarray(box)},
        (
            Panel(f"{request.layer} ch {request.channel} at ({row}, {col})", "image", request.image, (box,)),
            Panel("guided backprop", "gradient", guided[0]),
        ),
        f"activation {layer_activations(request)[row, col, request.channel]:.3g} at ({row}, {col})",
    )


EVERY_TARGET_UP_TO = 64  # Grad-CAM computes every class in one call up to this many classes, else one per target


def explain_grad_cam(request: Request) -> Explanation:
    """Grad-CAM of the target class at the layer (the default upsampling), over the image. Every class's map comes
    from one call (one forward pass and a backward pass per class from the scores to the layer, the same compiled
    graph) and is kept: a change of target redraws without a pass."""
    require(request, "layer", "target")
    n_classes = int(request.model.outputs[0].shape[-1])
    every = n_classes <= EVERY_TARGET_UP_TO
    cams = request.work.get(
        ("grad_cam", request.layer, None if every else request.target),
        "backward",
        lambda: grad_cam(
            request.model, request.inputs[:1], list(range(n_classes)) if every else request.target, request.layer
        ),
    )
    cam = cams[:, request.target] if every else cams
    return Explanation({"grad_cam": cam}, (Panel(f"Grad-CAM at {request.layer}", "heat", cam[0]),))


def explain_guided_grad_cam(request: Request) -> Explanation:
    """Guided Grad-CAM: guided backprop of the class score times the Grad-CAM map (kept per layer and target)."""
    require(request, "layer", "target")
    maps = request.work.get(  # two gradients: guided backprop of the score, Grad-CAM
        ("guided_grad_cam", request.layer, request.target),
        "guided_grad_cam",
        lambda: guided_grad_cam(request.model, request.inputs[:1], request.target, request.layer),
    )
    return Explanation({"guided_grad_cam": maps}, (Panel(f"guided Grad-CAM at {request.layer}", "gradient", maps[0]),))


def explain_integrated_gradients(request: Request) -> Explanation:
    """Integrated Gradients of the target class (64 steps from a zero baseline, kept per target), with its
    completeness check: the attributions' sum against the score change y(x) - y(0) it should equal."""
    require(request, "target")
    model, x, target = request.model, request.inputs[:1], request.target
    attributions = request.work.get(
        ("integrated_gradients", target), "integrated_gradients", lambda: integrated_gradients(model, x, target)
    )
    check = request.work.get(("completeness", target), "forward", lambda: completeness(model, x, attributions, target))
    return Explanation(
        {"integrated_gradients": attributions, "completeness_error": np.float64(check.relative_error[0])},
        (Panel("integrated_gradients", "gradient", attributions[0]),),
        f"completeness: attributions sum to {check.sums[0]:.4g}, score change y(x) - y(0) = {check.changes[0]:.4g} "
        f"(error {100 * check.relative_error[0]:.2g}% at 64 steps)",
    )


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
    "Integrated Gradients": explain_integrated_gradients,
}
for _entry in methods.in_explorer():
    register(_entry.name, OWN_VIEWS.get(_entry.name) or by_kind(_entry), _entry.needs)
