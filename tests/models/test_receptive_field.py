"""cnnlib.models.receptive_field, checked against the reference's formula, perturbations and gradients."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnnlib.models import architectures
from cnnlib.models import receptive_field as rf


def _linearised(model: keras.Model, seed: int = 0) -> keras.Model:
    """Same geometry, ReLU -> identity, max-pool -> average-pool, strictly positive weights.

    Its input gradient is positive exactly on a neuron's receptive field: no cancellation, no
    dead units, so the support of the gradient is the minimal box.
    """
    rng = np.random.default_rng(seed)
    x = inputs = keras.Input(model.input.shape[1:])
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            conv = keras.layers.Conv2D(
                layer.filters,
                layer.kernel_size,
                layer.strides,
                layer.padding,
                dilation_rate=layer.dilation_rate,
                name=layer.name,
            )
            x = conv(x)
            kernel = conv.get_weights()[0]
            fan_in = np.prod(kernel.shape[:3])
            conv.set_weights(
                [rng.uniform(0.5, 1.5, kernel.shape).astype("float32") / fan_in, np.zeros(layer.filters, "float32")]
            )
        elif isinstance(layer, keras.layers.MaxPooling2D):
            x = keras.layers.AveragePooling2D(layer.pool_size, layer.strides, layer.padding, name=layer.name)(x)
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.MaxPooling2D)) and layer.name == model.layers[-1].name:
            break
    return keras.Model(inputs, x)


def _vgg19_base():
    keras.utils.set_random_seed(0)
    return keras.applications.VGG19(include_top=False, weights=None, input_shape=(224, 224, 3))


def _spatial_names(model):
    return [layer.name for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.MaxPooling2D))]


@pytest.mark.parametrize("name", list(architectures.ARCHITECTURES))
def test_equals_reference_formula_on_custom_networks(name):
    model = architectures.build_model(name)
    specs = architectures.ARCHITECTURES[name]
    for depth, layer in enumerate(architectures.layer_names(specs)):
        stack = [(s.kernel, s.stride) for s in specs[: depth + 1]]
        width = model.get_layer(layer).output.shape[1]
        for row, col in [(0, 0), (width - 1, width - 1), (width // 2, width // 3)]:
            assert rf.input_box(model, layer, row, col, clip=False) == rf.reference_projection(stack, row, col)


def test_published_vgg19_fields():
    base = _vgg19_base()
    fields = {n: rf.receptive_field(base, n, 224) for n in ("block3_conv4", "block4_conv4", "block5_conv4")}
    assert (fields["block3_conv4"].size, fields["block3_conv4"].jump) == (48, 4)
    assert (fields["block4_conv4"].size, fields["block4_conv4"].jump) == (116, 8)
    assert (fields["block5_conv4"].size, fields["block5_conv4"].jump) == (252, 16)
    # neuron (0, 0) starts at -118 (= 0 - 118 of padding) and would end at 134: clipped to the image
    assert rf.receptive_field(base, "block5_conv4", 224).offset == -118
    assert rf.input_box(base, "block5_conv4", 0, 0) == (0, 0, 134, 134)
    with pytest.raises(ValueError, match="has no layer 'input_layer'"):
        rf.receptive_field(base, "input_layer", 224)


def _random_neurons(model, layer, count, rng):
    h, w = model.get_layer(layer).output.shape[1:3]
    return [
        (int(rng.integers(h)), int(rng.integers(w)), int(rng.integers(model.get_layer(layer).output.shape[3])))
        for _ in range(count)
    ]


def _check_outside_pixels_do_not_matter(model, layers, count, rng):
    size = model.input.shape[1]
    for layer in layers:
        probe = keras.Model(model.input, model.get_layer(layer).output)
        neurons = _random_neurons(model, layer, count, rng)
        base = rng.uniform(0, 255, (1, size, size, 3)).astype("float32")
        noisy = []
        for row, col, _ in neurons:
            top, left, bottom, right = rf.input_box(model, layer, row, col)
            x = rng.uniform(0, 255, (size, size, 3)).astype("float32")
            x[top:bottom, left:right] = base[0, top:bottom, left:right]
            noisy.append(x)
        a_base = probe(base).numpy()[0]
        a_noisy = probe(np.stack(noisy)).numpy()
        for i, (row, col, ch) in enumerate(neurons):
            np.testing.assert_allclose(
                a_noisy[i, row, col, ch],
                a_base[row, col, ch],
                rtol=1e-4,
                atol=1e-4,
                err_msg=f"{layer} ({row}, {col}, {ch})",
            )


def _check_gradient_support_is_box(model, layers, count, rng, dense=True):
    """The gradient's nonzero support fills the box (``dense``) or, with dilation, spans it exactly."""
    linear = _linearised(model)
    size = model.input.shape[1]
    for layer in layers:
        probe = keras.Model(linear.input, linear.get_layer(layer).output)
        for row, col, ch in _random_neurons(model, layer, count, rng):
            x = tf.constant(rng.uniform(0, 1, (1, size, size, 3)).astype("float32"))
            with tf.GradientTape() as tape:
                tape.watch(x)
                value = probe(x)[0, row, col, ch]
            support = np.abs(tape.gradient(value, x).numpy()[0]).sum(axis=-1) > 0
            top, left, bottom, right = rf.input_box(model, layer, row, col)
            expected = np.zeros_like(support)
            expected[top:bottom, left:right] = True
            if dense:
                assert np.array_equal(support, expected), f"{layer} ({row}, {col})"
            rows, cols = np.nonzero(support)
            assert top <= rows.min() and left <= cols.min() and rows.max() < bottom and cols.max() < right
            if (top, left, bottom, right) == rf.input_box(model, layer, row, col, clip=False):
                # Inside the image the box is minimal: the support touches all four sides.
                assert (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1) == (top, left, bottom, right)


@pytest.mark.parametrize("name", list(architectures.ARCHITECTURES))
def test_custom_boxes_are_exact(name):
    model = architectures.build_model(name)
    rng = np.random.default_rng(1)
    layers = _spatial_names(model)
    model.get_layer("conv1").set_weights([w * 10 for w in model.get_layer("conv1").get_weights()])
    _check_outside_pixels_do_not_matter(model, layers, 6, rng)
    _check_gradient_support_is_box(model, layers, 3, rng)


def test_vgg19_boxes_are_exact():
    base = _vgg19_base()
    rng = np.random.default_rng(2)
    layers = ["block1_conv2", "block2_pool", "block3_conv4", "block4_conv4", "block5_conv4"]
    _check_outside_pixels_do_not_matter(base, layers, 3, rng)
    _check_gradient_support_is_box(base, layers, 2, rng)


def test_dilation_and_same_padding():
    inputs = keras.Input((20, 20, 3))
    x = keras.layers.Conv2D(1, 3, padding="same", dilation_rate=2, name="c1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="p1")(x)
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3, strides=2, padding="same", name="c2")(x))
    assert rf.receptive_field(model, "c1") == rf.Field(5, 1, -2)
    assert rf.receptive_field(model, "p1") == rf.Field(6, 2, -2)
    assert rf.receptive_field(model, "c2").size == 10
    # A dilated kernel skips pixels inside its box, so the support spans the box without filling it.
    _check_gradient_support_is_box(model, ["c1", "p1", "c2"], 12, np.random.default_rng(3), dense=False)


# ----------------------------------------------------------------------------- exact boxes at the border


def _support_boxes(model: keras.Model, layer: str) -> dict[tuple[int, int], tuple[int, int, int, int]]:
    """Brute force: the bounding box of each neuron's input dependencies, from the gradient of a linearised copy.

    ``model`` must already be linear with strictly positive weights and average pooling, so the
    gradient is nonzero exactly where the neuron depends on the input.
    """
    probe = keras.Model(model.input, model.get_layer(layer).output)
    h, w = probe.output.shape[1:3]
    size = model.input.shape[1]
    x = tf.constant(np.ones((h * w, size, size, 1), np.float32))
    onehot = np.zeros((h * w, h, w, probe.output.shape[3]), np.float32)
    for i in range(h * w):
        onehot[i, i // w, i % w, 0] = 1
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = tf.reduce_sum(probe(x) * onehot)
    grads = np.abs(tape.gradient(score, x).numpy()[..., 0]) > 0
    boxes = {}
    for i in range(h * w):
        rows, cols = np.nonzero(grads[i])
        boxes[(i // w, i % w)] = (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1) if len(rows) else (0, 0, 0, 0)
    return boxes


def _positive(model: keras.Model, seed: int) -> keras.Model:
    rng = np.random.default_rng(seed)
    model.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in model.get_weights()])
    return model


def test_issue_examples_give_minimal_boxes():
    inputs = keras.Input((20, 20, 1))
    dilated = keras.Model(inputs, keras.layers.Conv2D(1, 3, dilation_rate=3, padding="same", name="c")(inputs))
    assert rf.input_box(dilated, "c", 1, 1) == (1, 1, 5, 5)
    inputs = keras.Input((10, 10, 1))
    x = keras.layers.AveragePooling2D(3, 2, name="p")(inputs)
    pooled = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same", name="c")(x))
    assert rf.input_box(pooled, "c", 3, 3) == (4, 4, 9, 9)


@pytest.mark.parametrize("seed", range(6))
def test_random_stacks_boxes_equal_brute_force_for_every_neuron(seed):
    """Random stacks of (dilated) convs, pooling and explicit padding: every neuron, border ones included."""
    rng = np.random.default_rng(seed)
    size = int(rng.integers(14, 24))
    x = inputs = keras.Input((size, size, 1))
    names = []
    for i in range(int(rng.integers(2, 5))):
        kind = rng.choice(["conv", "conv", "pool", "pad"])
        width = x.shape[1]
        if width < 6:
            break
        name = f"l{i}"
        if kind == "conv":
            k, d = int(rng.integers(1, 4)), int(rng.integers(1, 3))
            s = int(rng.integers(1, 3))
            padding = str(rng.choice(["same", "valid"]))
            if padding == "valid" and d * (k - 1) + 1 > width:
                padding = "same"
            if d > 1 or k == 1:
                s = 1  # Keras does not allow strides > 1 with dilation; 1x1 stride 2 crashes oneDNN's gradient
            x = keras.layers.Conv2D(1, k, strides=s, dilation_rate=d, padding=padding, name=name)(x)
        elif kind == "pool":
            k = int(rng.integers(2, 4))
            x = keras.layers.AveragePooling2D(
                k, int(rng.integers(1, 3)), padding=str(rng.choice(["same", "valid"])), name=name
            )(x)
        else:
            x = keras.layers.ZeroPadding2D(((1, 0), (0, 2)), name=name)(x)
        names.append(name)
    model = _positive(keras.Model(inputs, x), seed)
    for layer in names:
        if layer.startswith("l") and not isinstance(model.get_layer(layer), keras.layers.ZeroPadding2D):
            expected = _support_boxes(model, layer)
            got = {n: rf.input_box(model, layer, *n) for n in expected}
            assert got == expected, f"seed {seed}, layer {layer}"


def test_branches_merge_and_global_paths_cover_the_image():
    inputs = keras.Input((16, 16, 1))
    a = keras.layers.Conv2D(1, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(1, 1, strides=1, name="b")(inputs)
    added = keras.layers.Add(name="add")([a, b])
    squeeze = keras.layers.Reshape((1, 1, 1))(keras.layers.GlobalAveragePooling2D()(added))
    excited = keras.layers.Multiply(name="se")([added, squeeze])
    model = _positive(keras.Model(inputs, keras.layers.Conv2D(1, 1, name="after")(excited)), 0)
    assert _support_boxes(model, "add") == {n: rf.input_box(model, "add", *n) for n in _support_boxes(model, "add")}
    assert rf.input_box(model, "after", 5, 5) == (0, 0, 16, 16)  # squeeze-and-excitation sees everything
    assert rf.receptive_field(model, "after").size == 3  # the local field is still 3 x 3


@pytest.mark.parametrize(
    "layers",
    [
        [("c", 5, 1, 1), ("c", 3, 1, 1)],
        [("c", 7, 2, 1), ("p", 2, 2, 1), ("c", 3, 1, 2)],  # a stride, a pool, a dilation
        [("c", 11, 4, 1), ("p", 3, 2, 1), ("c", 5, 1, 1), ("p", 3, 2, 1), ("c", 3, 1, 1)],  # arch2's geometry
    ],
)
def test_effective_field_width_is_the_measured_one_under_uniform_weights(layers):
    """``effective_fields``' sigma is the standard deviation of d(neuron) / d(input) when every window weighs its taps
    equally (all-ones kernels, average pooling, no activation): the Gaussian of Luo et al. (2016), measured exactly."""
    import tensorflow as tf

    inputs = keras.Input((160, 160, 1))
    x = inputs
    for i, (kind, kernel, stride, dilation) in enumerate(layers):
        if kind == "c":
            x = keras.layers.Conv2D(
                1, kernel, stride, dilation_rate=dilation, use_bias=False, kernel_initializer="ones", name=f"l{i}"
            )(x)
        else:
            x = keras.layers.AveragePooling2D(kernel, stride, name=f"l{i}")(x)
    model = keras.Model(inputs, x)
    h = model.output.shape[1]
    image = tf.zeros((1, 160, 160, 1))
    with tf.GradientTape() as tape:
        tape.watch(image)
        neuron = model(image)[0, h // 2, h // 2, 0]
    gradient = tape.gradient(neuron, image).numpy()[0, :, :, 0]
    profile = gradient.sum(axis=1) / gradient.sum()  # the field's marginal along rows
    position = np.arange(160)
    mean = (profile * position).sum()
    measured = np.sqrt((profile * (position - mean) ** 2).sum())
    rows, cols = rf.effective_fields(model, f"l{len(layers) - 1}")
    assert rows.sigma == pytest.approx(measured, rel=1e-5) and cols.sigma == rows.sigma  # float32 gradients
    assert mean == pytest.approx(rows.centres[h // 2], abs=1e-4)  # and the field is centred on the field centre
