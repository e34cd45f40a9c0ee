"""keras.applications models (weights=None, 96 px): Grad-CAM equals tf-keras-vis;
guided backprop is not the plain gradient."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnnlib import interpret

ZOO = {  # model -> the layer tf-keras-vis and we both explain (the last 4-D feature map before pooling)
    "VGG16": "block5_conv3",
    "VGG19": "block5_conv4",
    "ResNet50": "conv5_block3_out",
    "MobileNetV2": "out_relu",
    "EfficientNetB0": "top_activation",
    "DenseNet121": "relu",
}


def zoo_model(name: str, size: int = 96) -> keras.Model:
    """A keras.applications classifier with random weights and 5 classes (softmax output, as shipped)."""
    keras.utils.set_random_seed(0)
    return getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3), classes=5)


@pytest.mark.zoo
@pytest.mark.parametrize("name", list(ZOO))
def test_the_default_layer_is_the_map_the_peers_explain(name):
    """After the last convolution's batch normalisation and activation, before pooling (not the raw convolution)."""
    assert interpret.default_layer(zoo_model(name)) == ZOO[name]


@pytest.mark.zoo
@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_gradcam_equals_tf_keras_vis_and_guided_differs(name):
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    model = zoo_model(name)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 96, 96, 3)).astype(np.float32)
    layer = ZOO[name]
    assert "softmax" in interpret.score_source(model)  # the fused softmax is left out, found by itself
    ours = interpret.grad_cam_raw(model, x, [1, 3], layer)
    peer = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)
    # seek_penultimate_conv_layer=False: otherwise tf-keras-vis silently moves from an activation layer
    # (ResNet's conv5_block3_out) down to the conv before it, which is another map.
    theirs = np.stack(
        [
            np.asarray(
                peer(
                    CategoricalScore([t, t]),
                    x,
                    penultimate_layer=layer,
                    expand_cam=False,
                    normalize_cam=False,
                    seek_penultimate_conv_layer=False,
                )
            )
            for t in (1, 3)
        ],
        axis=1,
    )
    scale = max(np.abs(theirs).max(), 1e-30)
    assert np.abs(ours - theirs).max() <= 1e-5 * scale, f"{name}: {np.abs(ours - theirs).max() / scale:.2e}"
    assert interpret.grad_cam(model, x, 1, layer).shape == (2, 96, 96)

    weights = interpret.one_hot_scores(model, [1, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # EfficientNet's swish: the warning is checked through view._warned
        guided = interpret.guided_backprop(model, x, None, weights=weights)
    assert np.all(np.isfinite(guided)) and np.abs(guided).sum() > 0
    plain = _plain_score_gradient(model, x, weights)
    if name == "EfficientNetB0":  # swish everywhere: no ReLU, so no guided rule applies, and we say so
        assert "swish" in interpret.view._warned or "silu" in interpret.view._warned
        assert np.abs(guided - plain).max() <= 1e-4 * np.abs(plain).max()
    else:
        assert np.abs(guided - plain).max() > 1e-3 * np.abs(plain).max()  # the guided rule changed the map


def _plain_score_gradient(model, x, weights):
    """d (weights . pre-softmax scores) / d x through an independent linear-output clone."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    clone.layers[-1].activation = keras.activations.linear
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        score = tf.reduce_sum(clone(xt) * weights)
    return tape.gradient(score, xt).numpy()
