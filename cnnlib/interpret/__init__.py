"""Interpretability methods for any Keras 3 classifier, one module each; every map is f(model, inputs, target) -> array.

``inputs`` are what the model takes (uint8-range images for the custom networks, which
rescale inside; ``vgg19.preprocess`` output for VGG19), float32 (N, H, W, 3). Every method
works on the model's *current* weights, takes class scores before softmax (found by itself,
see ``score_source``) and accepts layers inside nested models by path ("vgg19/block5_conv4").

- ``view``: the flat copy of a model all methods run on (current weights, pre-softmax scores).
- ``feature_maps``: activations of chosen layers.
- ``patches``: input patches that maximally activate a channel (per image, or top-k over a set).
- ``guided_backprop``: guided backpropagation from one neuron (or a class score) to the input.
- ``gradcam``: Grad-CAM, upsampled along the receptive fields, and guided Grad-CAM.
- ``cam``: the CAM family as channel weightings of one layer: Grad-CAM++, HiResCAM, LayerCAM.
- ``scorecam``: Score-CAM, channel weights from batched masked forward passes.
- ``upsample``: layer maps to the input grid, along the receptive fields or by a plain resize.
- ``gradients``: vanilla gradient (saliency), SmoothGrad, Integrated Gradients and its ``completeness``; ``to_heatmap``.
- ``occlusions``: score drop when a sliding patch is hidden.
- ``activation_max``: feature visualisation by optimisation for a channel or a class.
"""

from collections.abc import Callable

import cnnlib.backend  # noqa: F401  (first: on TensorFlow, its import-time C++ notes silenced, log level set)
from cnnlib.interpret.activation_max import activation_maximisation, maximise_channels
from cnnlib.interpret.cam import cam_raw, grad_cam_plus_plus, hires_cam, layer_cam
from cnnlib.interpret.feature_maps import conv_layer_names, feature_maps
from cnnlib.interpret.gradcam import (
    DEFAULT_UPSAMPLING,
    UPSAMPLING,
    compare_upsampling,
    grad_cam,
    grad_cam_raw,
    guided_grad_cam,
    upsample_maps,
)
from cnnlib.interpret.gradients import (
    Completeness,
    class_scores,
    completeness,
    integrated_gradients,
    saliency,
    smooth_grad,
    to_heatmap,
)
from cnnlib.interpret.guided_backprop import (
    guided_backprop,
    guided_backprop_channels,
    guided_copy,
    guided_relu,
    one_hot_scores,
)
from cnnlib.interpret.occlusions import occlusion
from cnnlib.interpret.patches import (
    argmax_patches,
    channel_maxima,
    channel_maxima_of_layers,
    strongest_argmax_patches,
    strongest_channels,
    top_k_patches,
)
from cnnlib.interpret.scorecam import score_cam, scored_channels
from cnnlib.interpret.view import ExplainError, default_layer, explainable_layers, last_conv_layer, score_source

__all__ = [
    "DEFAULT_UPSAMPLING",
    "UPSAMPLING",
    "ExplainError",
    "function_of",
    "activation_maximisation",
    "argmax_patches",
    "cam_raw",
    "class_scores",
    "compare_upsampling",
    "Completeness",
    "completeness",
    "channel_maxima",
    "channel_maxima_of_layers",
    "conv_layer_names",
    "feature_maps",
    "grad_cam",
    "grad_cam_plus_plus",
    "grad_cam_raw",
    "guided_backprop",
    "guided_backprop_channels",
    "guided_copy",
    "guided_grad_cam",
    "guided_relu",
    "hires_cam",
    "integrated_gradients",
    "last_conv_layer",
    "maximise_channels",
    "default_layer",
    "explainable_layers",
    "layer_cam",
    "occlusion",
    "one_hot_scores",
    "saliency",
    "score_cam",
    "score_source",
    "scored_channels",
    "smooth_grad",
    "strongest_argmax_patches",
    "strongest_channels",
    "to_heatmap",
    "top_k_patches",
    "upsample_maps",
]


def function_of(method) -> Callable:
    """The function of ``method``, an entry of the method table (``cnnlib.methods.TABLE``): ``interpret.<key>``."""
    return globals()[method.key]
