"""The explorer driven without a browser: set each control's .value, compare with cnnlib.interpret."""

from __future__ import annotations

import datetime
import io

import keras
import numpy as np
import pytest
from PIL import Image

from cnnlib import backend, interpret
from cnnlib.explore import registry
from cnnlib.explore.app import Explorer
from cnnlib.explore.render import TITLE
from cnnlib.explore.state import MAX_UPLOAD_BYTES, Dataset, ExplorerSession, ModelEntry
from cnnlib.models import architectures
from cnnlib.models.receptive_field import input_box

CLASSES = ("alpha", "beta", "gamma")


def _loader(arch: str, seed: int, label: str):
    def load(progress):
        progress(0, 1, f"building {arch}")
        keras.utils.set_random_seed(seed)
        model = architectures.build_model(arch, len(CLASSES))
        progress(1, 1, "ready")
        return ModelEntry(model, lambda x: x.astype("float32"), label, warning=arch == "arch1")

    return load


@pytest.fixture(scope="module")
def explorer() -> Explorer:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (15, 224, 224, 3), dtype=np.uint8)
    y = np.arange(15) % 3
    data = Dataset({"train": (x, y), "test": (x[9:], y[9:])}, CLASSES, "train")
    catalogue = {
        "arch3": _loader("arch3", 1, "untrained arch3 (seed 1)"),
        "arch1": _loader("arch1", 2, "RANDOM INIT (seed 2), not ImageNet"),
    }
    return Explorer(ExplorerSession(catalogue, data), "arch3", "Grad-CAM", "test", "beta")


def _current(e: Explorer):
    model = e.session.entry(e.model.value).model
    chosen = e.session.data.indices(e.split.value, e.class_name.value)
    image = e.session.data.arrays[e.split.value][0][chosen[e.index.value]]
    return model, image[None].astype(np.float32)


def _file(name: str, kind: str, content: bytes) -> tuple[dict]:
    """A FileUpload value, as the browser sends it."""
    return (
        {
            "name": name,
            "type": kind,
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
        },
    )


def _red_pixels(rgb: np.ndarray) -> int:
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    return int(((r > 120) & (g < 90) & (b < 90)).sum())


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_every_method_matches_cnnlib_interpret(explorer):
    e = explorer
    e.set(method="Grad-CAM", layer="conv3", target=2, index=1, at_argmax=True, channel=5)
    model, x = _current(e)
    assert not e.frame.message
    np.testing.assert_allclose(
        e.frame.explanation.arrays["grad_cam"], interpret.grad_cam(model, x, 2, "conv3"), rtol=1e-5, atol=1e-6
    )
    e.method.value = "guided Grad-CAM"
    np.testing.assert_allclose(
        e.frame.explanation.arrays["guided_grad_cam"],
        interpret.guided_grad_cam(model, x, 2, "conv3"),
        rtol=1e-6,
        atol=1e-9,
    )
    e.method.value = "guided backprop"  # the channel's argmax neuron, as guided_backprop picks it
    np.testing.assert_allclose(
        e.frame.explanation.arrays["guided_backprop"],
        interpret.guided_backprop(model, x, "conv3", 5),
        rtol=1e-6,
        atol=1e-9,
    )
    e.method.value = "argmax patch"
    patch = interpret.argmax_patches(model, x, "conv3", [5])[0]
    assert tuple(e.frame.explanation.arrays["box"]) == patch.box
    e.method.value = "all channels"
    np.testing.assert_array_equal(
        e.frame.explanation.arrays["feature_maps"], interpret.feature_maps(model, x, ["conv3"])["conv3"][0]
    )
    e.method.value = "top-9 patches"
    train = e.session.data.arrays["train"][0].astype(np.float32)
    top = interpret.top_k_patches(model, train, "conv3", [5], k=9)[5]
    np.testing.assert_array_equal(e.frame.explanation.arrays["images"], [p.image for p in top])
    np.testing.assert_array_equal(e.frame.explanation.arrays["boxes"], [p.box for p in top])


def test_target_defaults_to_the_predicted_class_and_probabilities_are_the_models(explorer):
    e = explorer
    e.set(method="Grad-CAM", layer="conv4", target=-1)
    model, x = _current(e)
    probabilities = backend.to_numpy(model(x))[0]
    np.testing.assert_allclose(e.frame.probabilities, probabilities, rtol=1e-5)
    assert e.frame.target == int(np.argmax(probabilities))
    np.testing.assert_allclose(
        e.frame.explanation.arrays["grad_cam"],
        interpret.grad_cam(model, x, int(np.argmax(probabilities)), "conv4"),
        rtol=1e-5,
        atol=1e-6,
    )
    assert "(predicted)" in e.probabilities.value


def test_a_chosen_neuron_shows_its_box_and_guided_backprop(explorer):
    e = explorer
    e.set(method="feature map + neuron", layer="conv2", channel=3, at_argmax=False, row=4, col=7)
    model, x = _current(e)
    arrays = e.frame.explanation.arrays
    assert e.row.max == e.frame.layer_shape[0] - 1 and not e.row.disabled
    assert tuple(arrays["box"]) == input_box(model, "conv2", 4, 7)
    np.testing.assert_array_equal(
        arrays["feature_map"], interpret.feature_maps(model, x, ["conv2"])["conv2"][0, ..., 3]
    )
    before = e.image.value
    e.col.value = 2  # moving the neuron redraws the same Image widget with a new picture
    assert tuple(e.frame.explanation.arrays["box"]) == input_box(model, "conv2", 4, 2)
    assert e.image.value != before and e.frame.passes == {}  # from the activations kept for the image
    e.method.value = "guided backprop"  # the same neuron: its box and its guided backpropagation, one pass
    assert e.frame.passes == {"backward": 1}
    assert tuple(e.frame.explanation.arrays["box"]) == input_box(model, "conv2", 4, 2)
    np.testing.assert_allclose(
        e.frame.explanation.arrays["guided_backprop"],
        interpret.guided_backprop(model, x, "conv2", 3, positions=[(4, 2)]),
        rtol=1e-6,
        atol=1e-9,
    )
    assert e.frame.seconds["draw"] > 0
    e.at_argmax.value = True
    assert e.row.disabled and e.col.disabled


def test_panel_updates_in_place_and_always_names_the_weights(explorer):
    e = explorer
    e.set(method="Grad-CAM", layer="conv4")
    widget_ids = [id(child) for child in e.widget.children]
    picture = e.image
    first = e.image.value
    assert "untrained arch3 (seed 1)" in e.weights.value
    e.model.value = "arch1"
    assert [id(child) for child in e.widget.children] == widget_ids and e.image is picture
    assert e.layer.options == ("conv1", "conv2") and e.layer.value == "conv2"  # conv4 is not in arch1
    assert "RANDOM INIT (seed 2), not ImageNet" in e.weights.value and "#c00000" in e.weights.value
    assert e.image.value != first and _png(e.image.value).ndim == 3
    assert _red_pixels(_png(e.image.value)[:TITLE]) > 20  # the picture itself names the fallback, in red
    e.model.value = "arch3"
    assert "untrained arch3 (seed 1)" in e.weights.value
    assert _red_pixels(_png(e.image.value)[:TITLE]) == 0 and _png(e.image.value)[:TITLE].min() < 100  # in black


def test_controls_a_method_does_not_read_are_disabled(explorer):
    e = explorer
    e.set(method="Grad-CAM")
    assert e.channel.disabled and not e.target.disabled and not e.layer.disabled
    e.method.value = "all channels"
    assert e.channel.disabled and e.target.disabled and not e.layer.disabled


def test_a_channel_beyond_the_layer_is_a_message_not_a_traceback(explorer):
    e = explorer
    e.set(method="guided backprop", layer="conv1", channel=8)  # conv1 has 8 channels: 0-7
    assert e.frame.explanation is None
    assert "Layer 'conv1' has 8 channels (0-7); channel 8 does not exist." in e.message.value
    assert "Traceback" not in e.message.value
    e.channel.value = 7
    assert not e.frame.message and "cnnlib-error" not in e.message.value


def test_uploads_are_used_or_refused_with_a_clear_message(explorer):
    e = explorer
    e.set(method="Grad-CAM", layer="conv4")
    photo = np.random.default_rng(3).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="PNG")
    e.upload.value = _file("mine.png", "image/png", buffer.getvalue())
    assert not e.frame.message and e.frame.image_name == "uploaded mine.png"
    model = e.session.entry("arch3").model
    resized = np.asarray(Image.fromarray(photo).resize((224, 224), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(e.frame.image, resized)
    np.testing.assert_allclose(
        e.frame.explanation.arrays["grad_cam"],
        interpret.grad_cam(model, resized[None].astype(np.float32), e.frame.target, "conv4"),
        rtol=1e-5,
        atol=1e-6,
    )

    e.upload.value = _file("notes.txt", "text/plain", b"hello")
    assert e.frame.explanation is None
    assert "notes.txt is not an image this explorer can read: upload a JPEG or PNG" in e.message.value

    noise = np.random.default_rng(4).integers(0, 256, (1900, 1900, 3), dtype=np.uint8)  # incompressible
    big = io.BytesIO()
    Image.fromarray(noise).save(big, format="PNG", compress_level=0)
    assert len(big.getvalue()) > 10_000_000
    e.upload.value = _file("huge.png", "image/png", big.getvalue())
    assert f"huge.png is 10.3 MiB; uploads are limited to {MAX_UPLOAD_BYTES >> 20} MiB" in e.message.value
    other = next(c for c in e.class_name.options if c != e.class_name.value)
    e.class_name.value = other  # choosing a dataset image again leaves the upload (a change, whatever came before)
    assert not e.frame.message and e.frame.image_name.startswith(f"test: {other}")


def test_registering_a_method_is_one_line_and_the_explorer_offers_it(explorer):
    def toy_map(model, inputs, target, layer_name=None):
        return np.ones((len(inputs), 6, 6), np.float32) * (target + 1)  # conv4 is 6 x 6

    try:
        registry.register("toy", registry.class_heatmap(toy_map), needs=("layer", "target"))
        e = Explorer(explorer.session, "arch3", "toy", "test", "alpha")
        assert "toy" in e.method.options
        e.set(layer="conv4", target=1)
        assert e.frame.explanation.arrays["toy_map"].max() == 2
        assert e.frame.explanation.panels[0].array.shape == (224, 224)  # upsampled along the fields
        with pytest.raises(ValueError, match="unknown controls"):
            registry.register("bad", registry.class_heatmap(toy_map), needs=("colour",))
    finally:
        registry.METHODS.pop("toy", None)


def test_unknown_model_or_image_index_is_a_message(explorer):
    frame = explorer.session.frame(explorer.state().__class__(model="resnet", method="Grad-CAM", class_name="alpha"))
    assert frame.message == "No model 'resnet'; choose one of arch3, arch1."
    state = explorer.state().__class__(model="arch3", method="Grad-CAM", class_name="alpha", index=40)
    assert "image 40 does not exist" in explorer.session.frame(state).message
