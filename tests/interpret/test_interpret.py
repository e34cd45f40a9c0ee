"""cnnlib.interpret: guided backprop, Grad-CAM, patches and feature maps, against independent computations."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import small_models

from cnnlib import backend, interpret
from cnnlib.models.receptive_field import input_box

pytestmark = pytest.mark.backends  # run once more on JAX by `make test-jax`

# ----------------------------------------------------------------------------- guided backprop
# A 1 x 3 image with one channel, x = [1, -2, 3]. Layer 1 (1x1 conv, 3 channels, ReLU):
#   h1 = relu(x), h2 = relu(-x), h3 = relu(0.5 x + 2).
# Layer 2 (1x1 conv, 1 channel, ReLU): o = relu(2 h1 - 1 h2 + 4 h3 + 5).
# Target: o at column 1, where x = -2: h1 = 0 (pre-activation -2), h2 = 2, h3 = 1, o = 0 - 2 + 4 + 5 = 7 > 0.
# Backward into x at column 1 (o's own ReLU passes: input 7 > 0, upstream 1 > 0):
#   via h1: upstream 2 > 0 but forward input -2 < 0     -> blocked (plain gradient: 0 too)
#   via h2: upstream -1 < 0                             -> blocked by the guided rule (plain: -1 * -1 = +1)
#   via h3: upstream 4 > 0, forward input 1 > 0         -> 4 * 0.5 = 2 (plain: 2)
# So the guided map is [0, 2, 0] and the plain gradient [0, 3, 0]; columns 0 and 2 do not reach o.
X_TINY = np.array([1.0, -2.0, 3.0], np.float32).reshape(1, 1, 3, 1)
W1 = np.array([1.0, -1.0, 0.5], np.float32).reshape(1, 1, 1, 3)
B1 = np.array([0.0, 0.0, 2.0], np.float32)
W2 = np.array([2.0, -1.0, 4.0], np.float32).reshape(1, 1, 3, 1)
B2 = np.array([5.0], np.float32)


def _tiny(style: str) -> keras.Model:
    """The network above, with ReLUs fused into the convs, as standalone layers, or inside a nested model."""
    inputs = keras.Input((1, 3, 1))
    if style == "fused":
        x = keras.layers.Conv2D(3, 1, activation="relu", name="c1")(inputs)
        out = keras.layers.Conv2D(1, 1, activation="relu", name="c2")(x)
    elif style == "layers":
        x = keras.layers.ReLU(name="r1")(keras.layers.Conv2D(3, 1, name="c1")(inputs))
        out = keras.layers.Activation("relu", name="c2_relu")(keras.layers.Conv2D(1, 1, name="c2")(x))
    else:  # nested: the first layer lives in an inner model
        inner_in = keras.Input((1, 3, 1))
        inner = keras.Model(inner_in, keras.layers.Conv2D(3, 1, activation="relu", name="c1")(inner_in), name="inner")
        out = keras.layers.Conv2D(1, 1, activation="relu", name="c2")(inner(inputs))
    model = keras.Model(inputs, out)
    model.set_weights([W1, B1, W2, B2])
    return model


@pytest.mark.parametrize("style", ["fused", "layers", "nested"])
def test_guided_backprop_matches_hand_derivation(style):
    model = _tiny(style)
    target_layer = model.layers[-1].name
    guided = interpret.guided_backprop(model, X_TINY, target_layer, channel=0, positions=[(0, 1)])
    np.testing.assert_allclose(guided.reshape(-1), [0.0, 2.0, 0.0])
    plain_gradient = backend.gradient_function(lambda x: (model(x)[0, 0, 1, 0], ()))
    plain = backend.to_numpy(plain_gradient(keras.ops.convert_to_tensor(X_TINY))[0]).reshape(-1)
    np.testing.assert_allclose(plain, [0.0, 3.0, 0.0])
    assert not np.allclose(guided.reshape(-1), plain)
    np.testing.assert_allclose(backend.to_numpy(interpret.guided_copy(model)(X_TINY)), backend.to_numpy(model(X_TINY)))


def _images(n=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, 224, 224, 3)).astype(np.float32)


def test_guided_copy_forward_equals_original_and_batch_equals_single():
    model = small_models.project("arch3")
    x = _images()
    np.testing.assert_allclose(
        backend.to_numpy(interpret.guided_copy(model)(x)), backend.to_numpy(model(x)), rtol=1e-5, atol=1e-7
    )
    batch = interpret.guided_backprop(model, x, "conv4", channel=1)
    single = np.concatenate([interpret.guided_backprop(model, x[i : i + 1], "conv4", channel=1) for i in range(3)])
    np.testing.assert_allclose(batch, single, rtol=1e-5, atol=1e-8)
    assert np.abs(batch).sum() > 0
    with pytest.raises(ValueError, match="Give a layer and a channel"):
        interpret.guided_backprop(model, x, "conv4")


def test_guided_backprop_is_zero_outside_the_neurons_field():
    model = small_models.project("arch2")
    x = _images(1)
    grads = interpret.guided_backprop(model, x, "conv3", channel=0, positions=[(2, 5)])
    top, left, bottom, right = input_box(model, "conv3", 2, 5)
    outside = np.abs(grads[0]).sum(axis=-1)
    outside[top:bottom, left:right] = 0
    assert outside.max() == 0


# ----------------------------------------------------------------------------- Grad-CAM


def test_grad_cam_equals_cam_on_gap_network():
    model = small_models.gap_cnn(fused_softmax=False)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    raw = interpret.grad_cam_raw(model, x, [0, 1, 2, 3], layer_name="conv")
    acts = backend.to_numpy(keras.Model(model.input, model.get_layer("conv").output)(x))  # (2, 14, 14, 6)
    weights = model.get_layer("logits").get_weights()[0]  # (6, 4)
    cam = np.maximum(np.einsum("nhwk,kc->nchw", acts, weights), 0)  # CAM (Zhou et al., 2016)
    hw = acts.shape[1] * acts.shape[2]
    np.testing.assert_allclose(raw * hw, cam, rtol=1e-4, atol=1e-6)  # equal up to the constant 1 / (h w)
    assert not np.allclose(raw[:, 0], raw[:, 1])  # different targets, different maps


def test_grad_cam_batch_single_and_scale_invariance():
    model = small_models.project("arch3", seed=2)
    x = _images(3, seed=2)
    maps = interpret.grad_cam(model, x, [0, 3])
    assert maps.shape == (3, 2, 224, 224) and maps.max() <= 1.0 and maps.min() >= 0.0
    single = np.stack([interpret.grad_cam(model, x[i : i + 1], [0, 3])[0] for i in range(3)])
    np.testing.assert_allclose(maps, single, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(interpret.grad_cam(model, x, 3), maps[:, 1], rtol=1e-5, atol=1e-6)

    scaled = keras.models.clone_model(model)
    scaled.set_weights(model.get_weights())
    kernel, bias = scaled.get_layer("logits").get_weights()
    scaled.get_layer("logits").set_weights([kernel * 7.5, bias * 7.5])
    np.testing.assert_allclose(interpret.grad_cam(scaled, x, [0, 3]), maps, rtol=1e-4, atol=1e-5)


def test_guided_grad_cam_is_product_of_its_parts():
    model = small_models.project("arch2", seed=3)
    x = _images(2, seed=3)
    combined = interpret.guided_grad_cam(model, x, 2)
    one_hot = np.zeros((2, 5), np.float32)
    one_hot[:, 2] = 1
    guided = interpret.guided_backprop(model, x, "logits", weights=one_hot)
    np.testing.assert_allclose(combined, guided * interpret.grad_cam(model, x, 2)[..., None], rtol=1e-5, atol=1e-9)


# ----------------------------------------------------------------------------- patches and feature maps


def test_feature_maps_match_layer_outputs():
    model = small_models.project("arch1")
    x = _images(2)
    maps = interpret.feature_maps(model, x, ["conv1", "conv2"])
    assert maps["conv1"].shape == (2, 54, 54, 8) and maps["conv2"].shape == (2, 22, 22, 16)
    probe = keras.Model(model.input, model.get_layer("conv2").output)
    np.testing.assert_allclose(maps["conv2"], backend.to_numpy(probe(x)), rtol=1e-5, atol=1e-6)
    assert interpret.conv_layer_names(model) == ["conv1", "conv2"]


def test_patches_agree_with_brute_force():
    model = small_models.project("arch2", seed=4)
    x = _images(5, seed=4)
    acts = backend.to_numpy(keras.Model(model.input, model.get_layer("conv3").output)(x))
    (first,) = interpret.argmax_patches(model, x[2:3], "conv3", [4])
    row, col = np.unravel_index(acts[2, ..., 4].argmax(), acts.shape[1:3])
    assert (first.row, first.col) == (row, col) and first.box == input_box(model, "conv3", row, col)
    top = interpret.top_k_patches(model, x, "conv3", [4, 7], k=3, batch_size=2)
    for ch, patches in top.items():
        per_image_max = acts[..., ch].reshape(5, -1).max(axis=1)
        assert [p.image for p in patches] == list(np.argsort(-per_image_max, kind="stable")[:3])
        np.testing.assert_allclose([p.activation for p in patches], np.sort(per_image_max)[::-1][:3], rtol=1e-5)
        crop = patches[0].crop(x)
        assert crop.shape == (patches[0].box[2] - patches[0].box[0], patches[0].box[3] - patches[0].box[1], 3)


def test_channel_maxima_of_layers_one_pass_equals_per_layer_and_cache_is_keyed_by_weights():
    model = small_models.project("arch3", seed=5)
    x = _images(5, seed=5)
    layers = ["conv1", "conv4"]
    together = interpret.channel_maxima_of_layers(model, x, layers, batch_size=2)
    cached = interpret.channel_maxima_of_layers(model, x, layers, batch_size=3, cache=True)  # computes, stores
    again = interpret.channel_maxima_of_layers(model, x[::-1], layers, cache=True)  # every image read back
    for layer in layers:
        alone = interpret.channel_maxima(model, x, layer, batch_size=5)
        for got in (together[layer], cached[layer]):
            assert got[0].dtype == np.float32 and got[1].dtype == np.int64
            np.testing.assert_array_equal(got[0], alone[0])  # bit for bit
            np.testing.assert_array_equal(got[1], alone[1])
        np.testing.assert_array_equal(again[layer][0], alone[0][::-1])
    model.get_layer("conv1").set_weights([w * 2 for w in model.get_layer("conv1").get_weights()])
    changed = interpret.channel_maxima_of_layers(model, x, layers, cache=True)
    np.testing.assert_allclose(changed["conv1"][0], 2 * together["conv1"][0], rtol=1e-6)  # not the old entry


@pytest.mark.parametrize("channel", [-1, 6])
def test_a_channel_the_layer_lacks_is_named_not_indexed_from_the_end(channel):
    """conv has 6 channels: -1 would silently mean the last one, 6 would fail inside NumPy."""
    model = small_models.gap_cnn()
    x = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)
    message = rf"Layer 'conv' has 6 channels \(0-5\); channel\(s\) \[{channel}\] do not exist"
    with pytest.raises(ValueError, match=message):
        interpret.argmax_patches(model, x, "conv", [0, channel])
    with pytest.raises(ValueError, match=message):
        interpret.top_k_patches(model, x, "conv", [channel], k=1)
    with pytest.raises(ValueError, match=message):
        interpret.guided_backprop_channels(model, x, "conv", [channel])
