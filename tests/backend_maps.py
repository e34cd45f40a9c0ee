"""Every ported method's maps on one model, for the cross-backend test (``tests/test_backend.py``).

Run as ``KERAS_BACKEND=<name> python tests/backend_maps.py MODEL WEIGHTS.npz IMAGES.npy OUT.npz``: builds MODEL
("arch3", or "mobilenetv2": keras.applications.MobileNetV2 at 96 x 96, alpha 0.35, weights=None, 5 classes), loads
the weights saved by the other backend, and writes {method: array}. ``maps(model, x)`` is the same computation
in-process.
"""

from __future__ import annotations

import sys

import numpy as np


def build(name: str):
    from cnnlib.backend import keras
    from cnnlib.models import architectures

    if name == "arch3":
        return architectures.build_model("arch3")
    return keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=5)


def maps(model, x: np.ndarray) -> dict[str, np.ndarray]:
    from cnnlib import interpret
    from cnnlib.models import forward

    layer = interpret.default_layer(model)
    early = interpret.conv_layer_names(model)[1]
    predicted = forward.predict(model, x)
    top = int(predicted[0].argmax())  # the first image's top class: its Grad-CAM is rarely all zero
    early_maps = interpret.feature_maps(model, x, [early])[early]
    alive = int(early_maps[0].mean(axis=(0, 1)).argmax())  # a channel whose ascent has a gradient to follow
    return {
        "predict": predicted,
        "feature_maps": early_maps,
        "saliency": interpret.saliency(model, x, [0, 2]),
        "smooth_grad": interpret.smooth_grad(model, x, 1, samples=4),
        "integrated_gradients": interpret.integrated_gradients(model, x, 1, steps=8),
        "grad_cam": interpret.cam_raw(model, x, [0, 2], "gradcam", layer),
        "grad_cam_plus_plus": interpret.cam_raw(model, x, [0, 2], "gradcam++", layer),
        "hires_cam": interpret.cam_raw(model, x, [0, 2], "hirescam", layer, relu=False),
        "layer_cam": interpret.cam_raw(model, x, [0, 2], "layercam", layer),
        "score_cam": interpret.score_cam(model, x, [0, 2], layer, upsample=None),
        "occlusion": interpret.occlusion(model, x, [0, 3], patch=x.shape[1] // 4, stride=x.shape[1] // 6),
        "guided_backprop": interpret.guided_backprop(model, x, early, channel=1),
        "guided_grad_cam": interpret.guided_grad_cam(model, x, top, layer),
        "upsampled_grad_cam": interpret.grad_cam(model, x, [0, 2], layer),
        "activation_maximisation": interpret.activation_maximisation(
            model, alive, early, steps=8, value_range=(0.0, float(x.max().round()))
        )[0],
    }


if __name__ == "__main__":
    name, weights, images, out = sys.argv[1:5]
    model = build(name)
    stored = np.load(weights)
    model.set_weights([stored[f"w{i}"] for i in range(len(stored.files))])
    np.savez(out, **maps(model, np.load(images)))
