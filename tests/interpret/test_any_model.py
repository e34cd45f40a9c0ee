"""Explanations for any Keras classifier: current weights, pre-softmax scores, nested layers, guided rules."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnnlib import interpret
from cnnlib.interpret import upsample, view
from cnnlib.interpret.checks import sanity
from cnnlib.models import architectures, training

# ----------------------------------------------------------------------------- maps follow the weights


def _images(n=2, seed=0, size=224):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype(np.float32)


METHODS = {
    "feature_maps": lambda m, x: interpret.feature_maps(m, x, ["conv3"])["conv3"],
    "patches": lambda m, x: np.array(
        [(p.image, p.row, p.col, p.activation) for p in interpret.top_k_patches(m, x, "conv3", [1], k=2)[1]]
    ),
    "argmax_patches": lambda m, x: np.array([p.activation for p in interpret.argmax_patches(m, x, "conv3", [0, 1])]),
    "guided_backprop": lambda m, x: interpret.guided_backprop(m, x, "conv3", channel=1),
    "grad_cam": lambda m, x: interpret.grad_cam(m, x, [0, 2]),
    "guided_grad_cam": lambda m, x: interpret.guided_grad_cam(m, x, 1),
    "sanity_guided_maps": lambda m, x: sanity.guided_backprop_maps(m, x, np.array([0, 3])),
}


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_follows_set_weights_and_fit(method):
    explain = METHODS[method]
    training.set_seed(0)
    model = architectures.build_model("arch2")
    x = _images()
    before = explain(model, x)
    training.set_seed(1)
    other = architectures.build_model("arch2")
    model.set_weights(other.get_weights())
    after = explain(model, x)
    np.testing.assert_allclose(after, explain(other, x), rtol=1e-5, atol=1e-6)
    assert not np.allclose(before, after)
    # a short fit changes the weights in place: maps must equal a fresh model carrying them
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, np.array([0, 3]), epochs=1, verbose=0)
    fresh = architectures.build_model("arch2")
    fresh.set_weights(model.get_weights())
    np.testing.assert_allclose(explain(model, x), explain(fresh, x), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- class scores before softmax


def _dense_head(kind: str, seed: int = 0) -> keras.Model:
    """Conv -> GAP -> 3 classes, with the softmax fused, as a Softmax layer, an Activation, or absent."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    if kind == "fused":
        return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="predictions")(x))
    logits = keras.layers.Dense(3, name="scores")(x)
    if kind == "softmax_layer":
        return keras.Model(inputs, keras.layers.Softmax()(logits))
    if kind == "activation":
        return keras.Model(inputs, keras.layers.Activation("softmax")(logits))
    return keras.Model(inputs, logits)


@pytest.mark.parametrize("kind", ["fused", "softmax_layer", "activation", "logits"])
def test_scores_are_found_before_softmax_without_touching_the_model(kind):
    model = _dense_head(kind)
    config_before = model.get_config()
    x = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    dense = model.layers[-1] if kind in ("fused", "logits") else model.layers[-2]
    # hand computation: d z_c / d A = w_c / (h w) for GAP -> Dense, so Grad-CAM = ReLU(A @ w_c) / (h w)
    acts = keras.Model(model.input, model.get_layer("conv").output)(x).numpy()
    kernel = dense.get_weights()[0]
    expected = np.maximum(np.einsum("nhwk,k->nhw", acts, kernel[:, 1]), 0) / (acts.shape[1] * acts.shape[2])
    np.testing.assert_allclose(interpret.grad_cam_raw(model, x, 1, "conv"), expected, rtol=1e-4, atol=1e-7)
    assert "logits" in interpret.score_source(model) or "softmax" in interpret.score_source(model)
    assert model.get_config() == config_before
    np.testing.assert_allclose(
        model(x).numpy().sum(axis=1), 1.0 if kind != "logits" else model(x).numpy().sum(1), rtol=1e-5
    )


def test_explicit_score_layer_and_missing_conv_layer():
    model = _dense_head("activation")
    assert "explicit" in interpret.score_source(model, "scores")
    x = np.random.default_rng(1).uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(
        interpret.grad_cam_raw(model, x, 0, "conv", score_layer="scores"),
        interpret.grad_cam_raw(model, x, 0, "conv"),
        rtol=1e-6,
    )
    inputs = keras.Input((8,))
    dense_only = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    with pytest.raises(interpret.ExplainError, match="no convolution layer"):
        interpret.grad_cam(dense_only, np.zeros((1, 8), np.float32), 0)
    with pytest.raises(interpret.ExplainError, match="has no layer 'nope'"):
        interpret.grad_cam(model, x, 0, "nope")


# ----------------------------------------------------------------------------- guided rules


def _one_activation(layer_or_name) -> keras.Model:
    inputs = keras.Input((1, 4, 1))
    pre = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones", name="c")(inputs)
    act = layer_or_name if isinstance(layer_or_name, keras.layers.Layer) else keras.layers.Activation(layer_or_name)
    return keras.Model(inputs, keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones", name="o")(act(pre)))


@pytest.mark.parametrize("activation", [keras.layers.ReLU(max_value=6.0), "relu6"])
def test_clipped_relu_gets_the_guided_rule_for_a_clipped_relu(activation):
    model = _one_activation(activation)
    x = np.array([-1.0, 2.0, 6.5, 3.0], np.float32).reshape(1, 1, 4, 1)
    weights = np.array([1.0, 1.0, 1.0, -1.0], np.float32).reshape(1, 1, 4, 1)  # negative dy at column 3
    guided = interpret.guided_backprop(model, x, "o", weights=weights).reshape(-1)
    # passes only where dy > 0 and 0 < x < 6: column 1
    np.testing.assert_array_equal(guided, [0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(interpret.guided_copy(model)(x).numpy(), model(x).numpy())


def test_activation_without_guided_rule_warns_once_and_keeps_its_gradient():
    model = _one_activation("gelu")
    x = np.array([-1.0, 2.0, 0.5, 3.0], np.float32).reshape(1, 1, 4, 1)
    weights = np.ones((1, 1, 4, 1), np.float32)
    view._warned.discard("gelu")
    with pytest.warns(UserWarning, match="gelu keep their ordinary gradient"):
        guided = interpret.guided_backprop(model, x, "o", weights=weights)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = tf.reduce_sum(model(xt))
    np.testing.assert_allclose(guided, tape.gradient(out, xt).numpy(), rtol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        interpret.guided_backprop(_one_activation("gelu"), x, "o", weights=weights)  # no second warning


# ----------------------------------------------------------------------------- nested models


def _nested(seed=0):
    keras.utils.set_random_seed(seed)
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(48, 48, 3))
    inputs = keras.Input((48, 48, 3))
    x = keras.layers.GlobalAveragePooling2D()(base(inputs))
    nested = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="predictions")(x))
    # the same network, flat
    flat_in = keras.Input((48, 48, 3))
    y = flat_in
    for layer in base.layers[1:]:
        y = layer.__class__.from_config(layer.get_config())(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    flat = keras.Model(flat_in, keras.layers.Dense(3, activation="softmax", name="predictions")(y))
    flat.set_weights(nested.get_weights())
    return nested, flat


def test_nested_layers_by_path_equal_the_flat_network():
    nested, flat = _nested()
    x = np.random.default_rng(2).uniform(-50, 50, (2, 48, 48, 3)).astype(np.float32)
    assert interpret.last_conv_layer(nested) == "vgg16/block5_conv3"
    assert interpret.default_layer(nested) == "vgg16/block5_conv3"  # the nested base's pool is left out
    np.testing.assert_allclose(
        interpret.grad_cam_raw(nested, x, [0, 2], "vgg16/block5_conv3"),
        interpret.grad_cam_raw(flat, x, [0, 2], "block5_conv3"),
        rtol=1e-4,
        atol=1e-6,
    )
    np.testing.assert_allclose(interpret.grad_cam(nested, x, 1), interpret.grad_cam(flat, x, 1), rtol=1e-4, atol=1e-5)
    by_name = interpret.feature_maps(nested, x, ["block3_conv1"])["block3_conv1"]  # unique name, found inside
    np.testing.assert_allclose(by_name, interpret.feature_maps(flat, x, ["block3_conv1"])["block3_conv1"], rtol=1e-5)
    np.testing.assert_allclose(
        interpret.guided_backprop(nested, x, "vgg16/block4_conv1", channel=3),
        interpret.guided_backprop(flat, x, "block4_conv1", channel=3),
        rtol=1e-4,
        atol=1e-6,
    )
    ours = interpret.top_k_patches(nested, x, "vgg16/block4_conv1", [3], k=2)[3]
    theirs = interpret.top_k_patches(flat, x, "block4_conv1", [3], k=2)[3]
    assert [(p.image, p.row, p.col, p.box) for p in ours] == [(p.image, p.row, p.col, p.box) for p in theirs]


# ----------------------------------------------------------------------------- the default layer


@pytest.mark.parametrize("architecture", list(architectures.ARCHITECTURES))
def test_the_project_networks_default_layer_is_their_last_convolution(architecture):
    model = architectures.build_model(architecture)  # conv(ReLU) / max-pool stacks: the conv carries its activation
    assert interpret.default_layer(model) == interpret.last_conv_layer(model)
    assert interpret.explainable_layers(model) == interpret.conv_layer_names(model)


def test_the_default_layer_is_the_block_output_after_normalisation_and_activation_before_pooling():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="out_relu")(x)
    x = keras.layers.SpatialDropout2D(0.2, name="drop")(x)  # identity at inference: not a map of its own
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(x))
    assert interpret.last_conv_layer(model) == "conv"
    assert interpret.default_layer(model) == "out_relu"
    assert interpret.explainable_layers(model) == ["conv", "out_relu"]
    x = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    np.testing.assert_array_equal(interpret.grad_cam_raw(model, x, 1), interpret.grad_cam_raw(model, x, 1, "out_relu"))
    dense = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    with pytest.raises(interpret.ExplainError, match="no convolution layer"):
        interpret.default_layer(dense)


# ----------------------------------------------------------------------------- Grad-CAM upsampling


def _valid_net():
    keras.utils.set_random_seed(0)
    return architectures.build_model("arch3")


def _stack(padding, layers):
    """A small conv / pool stack on 64 x 64 inputs: ("c", kernel, stride) or ("p", pool, stride) per layer."""
    inputs = keras.Input((64, 64, 3))
    x = inputs
    for i, (kind, kernel, stride) in enumerate(layers):
        if kind == "c":
            x = keras.layers.Conv2D(4, kernel, stride, padding=padding, activation="relu", name=f"l{i}")(x)
        else:
            x = keras.layers.MaxPooling2D(kernel, stride, padding=padding, name=f"l{i}")(x)
    return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x))), f"l{len(layers) - 1}"


GEOMETRIES = {
    "project arch3 (valid)": lambda: (_valid_net(), "conv4"),
    "valid, strides and pooling": lambda: _stack("valid", [("c", 5, 2), ("p", 3, 2), ("c", 3, 1)]),
    "same, strides and pooling": lambda: _stack("same", [("c", 5, 2), ("p", 2, 2), ("c", 3, 1)]),
    "same, stride 3": lambda: _stack("same", [("c", 7, 3), ("c", 3, 1)]),
}


@pytest.mark.parametrize("geometry", list(GEOMETRIES))
def test_one_hot_cell_is_one_blob_inside_its_field_on_its_centre(geometry):
    """The "field" rule: a single hot cell's map is >= 0 only inside the neuron's receptive-field box (the exact
    pixels it depends on) and peaks at the pixel nearest its field centre; "aligned" spills a corner cell over its
    whole held corner, which this test would catch."""
    from cnnlib.models import receptive_field as rf

    model, layer = GEOMETRIES[geometry]()
    h, w = model.get_layer(layer).output.shape[1:3]
    rows, cols = rf.effective_fields(model, layer)
    for row, col in {(0, 0), (h - 1, w - 1), (0, w // 2), (h // 2, w // 2), (h - 1, 0)}:
        cell = np.zeros((h, w), np.float32)
        cell[row, col] = 1.0
        up = interpret.upsample_maps(cell, model, layer, "field")
        top, left, bottom, right = rf.input_box(model, layer, row, col)
        support = np.argwhere(up > 0)
        assert support[:, 0].min() >= top and support[:, 0].max() < bottom, (row, col)
        assert support[:, 1].min() >= left and support[:, 1].max() < right, (row, col)
        peak = np.unravel_index(up.argmax(), up.shape)
        centre = (rows.centres[row], cols.centres[col])
        assert abs(peak[0] - centre[0]) <= 0.5 and abs(peak[1] - centre[1]) <= 0.5, (peak, centre)
        assert up.max() == 1.0
    corner = np.zeros((h, w), np.float32)
    corner[0, 0] = 1.0
    held = interpret.upsample_maps(corner, model, layer, "aligned")
    top_left = (int(rows.centres[0]), int(cols.centres[0]))
    if min(top_left) >= 3:  # "aligned" holds the corner value over the whole corner rectangle
        assert np.all(held[: top_left[0], : top_left[1]] == 1.0)
        assert interpret.upsample_maps(corner, model, layer, "field")[0, 0] < 1.0


@pytest.mark.parametrize("geometry", list(GEOMETRIES))
def test_no_row_or_column_repeats_unless_the_layer_map_does(geometry):
    """On a random layer map no two neighbouring rows (or columns) of the "field" map are equal, where the pixels are
    seen by the layer; a layer map whose rows are all equal gives equal rows."""
    from cnnlib.models import receptive_field as rf

    model, layer = GEOMETRIES[geometry]()
    h, w = model.get_layer(layer).output.shape[1:3]
    rows, cols = rf.effective_fields(model, layer)
    up = interpret.upsample_maps(
        np.random.default_rng(0).uniform(0.1, 1, (h, w)).astype(np.float32), model, layer, "field"
    )
    seen_rows = slice(int(rows.first.min()), int(rows.last.max()) + 1)
    seen_cols = slice(int(cols.first.min()), int(cols.last.max()) + 1)
    seen = up[seen_rows, seen_cols]
    assert not np.any(np.all(np.diff(seen, axis=0) == 0, axis=1)), "two neighbouring rows are equal"
    assert not np.any(np.all(np.diff(seen, axis=1) == 0, axis=0)), "two neighbouring columns are equal"
    held = interpret.upsample_maps(
        np.random.default_rng(0).uniform(0.1, 1, (h, w)).astype(np.float32), model, layer, "aligned"
    )[seen_rows, seen_cols]
    if rows.centres[0] - rows.first.min() >= 2:
        assert np.any(np.all(np.diff(held, axis=0) == 0, axis=1))  # the held edge repeats rows: the test can fail
    flat_rows = np.tile(np.random.default_rng(1).uniform(0.1, 1, (1, w)), (h, 1)).astype(np.float32)
    up_flat = upsample.upsample_raw(flat_rows, model, layer, "field")[
        rows.centres[0].astype(int) : int(rows.centres[-1])
    ]
    np.testing.assert_allclose(up_flat, np.broadcast_to(up_flat[:1], up_flat.shape), rtol=1e-6)


def test_vgg19_interior_unchanged_and_all_rules_agree_there():
    """VGG19 (same padding): the "field" rule equals the former default ("aligned") within 1e-6 between the outermost
    field centres (pixels 7.5 .. 215.5), and both equal the plain resize there."""
    keras.utils.set_random_seed(0)
    base = keras.applications.VGG19(include_top=False, weights=None, input_shape=(224, 224, 3))
    maps = np.random.default_rng(0).uniform(0, 1, (2, 14, 14)).astype(np.float32)
    by_rule = {rule: upsample.upsample_raw(maps, base, "block5_conv4", rule) for rule in interpret.UPSAMPLING}
    interior = (slice(None), slice(8, 216), slice(8, 216))
    np.testing.assert_allclose(by_rule["field"][interior], by_rule["aligned"][interior], atol=1e-6, rtol=0)
    np.testing.assert_allclose(by_rule["aligned"][interior], by_rule["resize"][interior], atol=1e-5, rtol=0)
    assert not np.allclose(by_rule["field"][:, :7], by_rule["aligned"][:, :7], atol=1e-6)  # the border fades
