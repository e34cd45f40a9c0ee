"""Interpretability methods, one module each; every map is f(model, inputs, target) -> array.

``inputs`` are what the model takes (uint8-range images for the custom networks, which
rescale inside; ``vgg19.preprocess`` output for VGG19), float32 (N, H, W, 3).

- ``feature_maps``: activations of chosen layers.
- ``patches``: input patches that maximally activate a channel (per image, or top-k over a set).
- ``guided_backprop``: guided backpropagation from one neuron (or a logit) to the input.
- ``gradcam``: Grad-CAM from the logits (before softmax), and guided Grad-CAM.
"""

from cnnlib.interpret.feature_maps import conv_layer_names, feature_maps
from cnnlib.interpret.gradcam import grad_cam, grad_cam_raw, guided_grad_cam
from cnnlib.interpret.guided_backprop import guided_backprop, guided_copy, guided_relu
from cnnlib.interpret.patches import argmax_patches, channel_maxima, strongest_channels, top_k_patches

__all__ = [
    "argmax_patches", "channel_maxima", "conv_layer_names", "feature_maps", "grad_cam", "grad_cam_raw", "guided_backprop",
    "guided_copy", "guided_grad_cam", "guided_relu", "strongest_channels", "top_k_patches",
]
