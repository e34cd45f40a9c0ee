"""The CAM family (Grad-CAM++, HiResCAM, LayerCAM, Score-CAM) against tf-keras-vis and against closed forms.

Small models (16 x 16 inputs, "same"-padded convolutions, a flatten -> dense head so gradients
vary over positions). Tolerance: max |ours - theirs| <= 1e-5 x max |theirs| (float32 round-off).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import small_models
import tensorflow as tf

from cnnlib import backend, interpret
from cnnlib.interpret import scorecam

TOL = 1e-5


def _x(n=2, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 16, 16, 3)).astype(np.float32)


def _logits(model, x):
    """Class scores before the fused softmax, computed by hand from the layer before the head."""
    kernel, bias = model.get_layer("logits").get_weights()
    return backend.to_numpy(keras.Model(model.input, model.layers[-2].output)(x)) @ kernel + bias


def _close(ours, theirs, tol=TOL):
    theirs = np.asarray(theirs)
    scale = max(np.abs(theirs).max(), 1e-30)
    assert np.abs(ours - theirs).max() <= tol * scale, f"relative error {np.abs(ours - theirs).max() / scale:.2e}"


def _peer(kind, model):
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

    if kind == "gradcam++":
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus as Peer
    elif kind == "layercam":
        from tf_keras_vis.layercam import Layercam as Peer
    else:
        from tf_keras_vis.scorecam import Scorecam as Peer
    return Peer(model, model_modifier=ReplaceToLinear(), clone=True)


def _raw(peer, target, x, layer, **kwargs):
    from tf_keras_vis.utils.scores import CategoricalScore

    return np.asarray(
        peer(
            CategoricalScore([target] * len(x)),
            x,
            penultimate_layer=layer,
            expand_cam=False,
            normalize_cam=False,
            seek_penultimate_conv_layer=False,
            **kwargs,
        )
    )


def test_grad_cam_plus_plus_equals_tf_keras_vis_and_the_paper_formula():
    """tf-keras-vis differentiates exp(score) and, like the authors' code, rescales alpha to sum 1 per channel.

    exp cancels in alpha and leaves a factor exp(y_c) per image on the map: theirs = exp(y_c) x ours with
    ``alpha_sum_to_one=True``. Our default is the paper's formula (alpha not rescaled, as pytorch-grad-cam),
    checked in numpy from gradients taken through an independent sub-model.
    """
    model, x = small_models.flat_cnn(pool=False, padding="same", names=("c1", "c2"), head="logits"), _x()
    theirs = _raw(_peer("gradcam++", model), 2, x, "c2")
    ours = interpret.grad_cam_plus_plus(model, x, 2, "c2", upsample=None, alpha_sum_to_one=True)
    _close(ours * np.exp(_logits(model, x)[:, 2])[:, None, None], theirs)

    sub = keras.Model(model.input, [model.get_layer("c2").output, model.layers[-2].output])
    kernel, bias = model.get_layer("logits").get_weights()
    with tf.GradientTape() as tape:
        acts, features = sub(tf.constant(x))
        score = tf.reduce_sum(features @ kernel[:, 2:3] + bias[2])
    g, a = tape.gradient(score, acts).numpy().astype(np.float64), acts.numpy().astype(np.float64)
    denominator = 2 * g**2 + a.sum(axis=(1, 2), keepdims=True) * g**3
    alpha = np.where(g != 0, g**2 / np.where(denominator == 0, 1, denominator), 0)
    expected = np.maximum(((alpha * np.maximum(g, 0)).sum(axis=(1, 2), keepdims=True) * a).sum(-1), 0)
    _close(interpret.grad_cam_plus_plus(model, x, 2, "c2", upsample=None), expected)
    assert not np.allclose(interpret.grad_cam_plus_plus(model, x, 2, "c2", upsample=None), ours)  # the two differ


@pytest.mark.parametrize("layer", ["c1", "c2"])
def test_layer_cam_equals_tf_keras_vis_on_early_and_late_layers(layer):
    """Same definition (ReLU(sum_k ReLU(g_k) A_k)); only the score differs by nothing: both take the logit."""
    model, x = small_models.flat_cnn(1, pool=False, padding="same", names=("c1", "c2"), head="logits"), _x(seed=1)
    for target in (0, 1):
        _close(
            interpret.layer_cam(model, x, target, layer, upsample=None),
            _raw(_peer("layercam", model), target, x, layer),
        )
    both = interpret.layer_cam(model, x, [0, 1], layer)
    assert both.shape == (2, 2, 16, 16) and 0 <= both.min() and both.max() <= 1


@pytest.mark.filterwarnings("ignore:The structure of `inputs`")  # tf-keras-vis passes Model.predict a list
def test_score_cam_equals_tf_keras_vis_with_softmax_and_brute_force_with_logits():
    """tf-keras-vis weights each channel by the softmax probability of the masked input, and upsamples the
    masks with scipy's corner-aligned zoom. The layer here has the input's resolution (stride 1, "same"),
    so both upsamplings are the identity and only the weights are compared: ``probabilities=True`` equals
    tf-keras-vis (all channels, and its Faster Score-CAM cap max_N = our ``channels``: the largest-std maps).
    Our default weight is the pre-softmax score, checked against a plain loop over channels.
    """
    model, x = small_models.flat_cnn(2, pool=False, padding="same", names=("c1", "c2"), head="logits"), _x(1, seed=2)
    peer = _peer("scorecam", model)
    _close(
        scorecam.score_cam(model, x, 1, "c2", upsample=None, probabilities=True, batch_size=4), _raw(peer, 1, x, "c2")
    )
    _close(
        scorecam.score_cam(model, x, 1, "c2", upsample=None, probabilities=True, channels=3),
        _raw(peer, 1, x, "c2", max_N=3),
    )

    acts = backend.to_numpy(keras.Model(model.input, model.get_layer("c2").output)(x))[0]  # (16, 16, 6)
    weights = []
    for k in range(acts.shape[-1]):
        a = acts[..., k]
        mask = (a - a.min()) / (a.max() - a.min()) if a.max() > a.min() else np.zeros_like(a)
        weights.append(_logits(model, x * mask[None, :, :, None])[0, 1])
    expected = np.maximum(np.einsum("hwk,k->hw", acts, np.array(weights)), 0)
    _close(interpret.score_cam(model, x, 1, "c2", upsample=None)[0], expected)
    chosen = interpret.scored_channels(acts[None], 2)[0]
    spread = acts.reshape(-1, 6).std(axis=0)
    assert set(chosen) == set(np.argsort(-spread)[:2])


def test_score_cam_resize_masks_are_tf_image_resize():
    model = small_models.gap_cnn()
    rows, cols = scorecam._mask_matrices(model, "conv", "resize")
    maps = np.random.default_rng(0).uniform(size=(14, 14)).astype(np.float32)
    expected = tf.image.resize(maps[None, :, :, None], (16, 16), method="bilinear").numpy()[0, :, :, 0]
    np.testing.assert_allclose(rows @ maps @ cols.T, expected, rtol=1e-5, atol=1e-6)


def test_hires_cam_is_cam_on_a_gap_network_and_sums_to_the_score():
    """Zhou et al.'s CAM, sum_k w_k^c A_k, equals HiResCAM x (h w) when conv -> GAP -> dense; without the
    ReLU, HiResCAM summed over positions is the class score minus the bias whenever the head is linear."""
    model, x = small_models.gap_cnn(3), _x(seed=3)
    acts = backend.to_numpy(keras.Model(model.input, model.get_layer("conv").output)(x))
    kernel, bias = model.get_layer("logits").get_weights()
    cam = np.einsum("nhwk,kc->nchw", acts, kernel)
    hw = acts.shape[1] * acts.shape[2]
    signed = interpret.hires_cam(model, x, [0, 1, 2, 3], "conv", upsample=None, relu=False)
    np.testing.assert_allclose(signed * hw, cam, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        interpret.hires_cam(model, x, [0, 1, 2, 3], "conv", upsample=None) * hw,
        np.maximum(cam, 0),
        rtol=1e-4,
        atol=1e-6,
    )
    np.testing.assert_allclose(signed.sum(axis=(2, 3)), _logits(model, x) - bias, rtol=1e-4, atol=1e-6)
    flat, xf = small_models.flat_cnn(4, pool=False, padding="same", names=("c1", "c2"), head="logits"), _x(seed=4)
    total = interpret.hires_cam(flat, xf, [0, 2], "c2", upsample=None, relu=False).sum(axis=(2, 3))
    np.testing.assert_allclose(
        total, _logits(flat, xf)[:, [0, 2]] - flat.get_layer("logits").get_weights()[1][[0, 2]], rtol=1e-4, atol=1e-5
    )


def test_cams_use_the_receptive_field_upsampling_and_check_their_arguments():
    model, x = small_models.gap_cnn(5), _x(seed=5)
    for method in (interpret.grad_cam_plus_plus, interpret.hires_cam, interpret.layer_cam, interpret.score_cam):
        raw = method(model, x, 1, "conv", upsample=None)
        np.testing.assert_allclose(
            method(model, x, 1, "conv"), interpret.upsample_maps(raw, model, "conv"), rtol=1e-5, atol=1e-6
        )
        with pytest.raises(ValueError, match="Target classes must be in 0..3"):
            method(model, x, 4, "conv")
    with pytest.raises(ValueError, match="needs a layer with \\(h, w, channels\\) output"):
        interpret.layer_cam(model, x, 1, "logits")
    with pytest.raises(ValueError, match="weighting='eigencam'"):
        interpret.cam_raw(model, x, 1, "eigencam", "conv")
