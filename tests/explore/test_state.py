"""cnnlib.explore.state: each image is computed once, and nothing is ever shown from memory that could be stale.

Counts come from the session itself (``Frame.passes``: every forward or backward pass goes through
``ImageWork.get``); freshness is checked against a session that keeps nothing (``keep=False``) and against
``cnnlib.interpret`` called directly.
"""

from __future__ import annotations

import numpy as np
import pytest
import small_models

from cnnlib import backend, interpret
from cnnlib.explore.state import Dataset, ExplorerSession, ModelEntry, State
from cnnlib.explore.work import ImageWork, weights_fingerprint

CLASSES = ("alpha", "beta", "gamma")
SHAPE = (32, 32, 3)


def _data() -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, *SHAPE), dtype=np.uint8)
    y = np.arange(12) % 3
    return Dataset({"train": (x, y), "test": (x[6:], y[6:])}, CLASSES, "train")


def _session(keep: bool = True) -> ExplorerSession:
    def loader(seed: int):
        def load(progress):
            model = small_models.flat_cnn(seed, shape=SHAPE, filters=(6, 8), names=("conv1", "conv2"))
            return ModelEntry(model, lambda x: x.astype("float32"), f"untrained flat_cnn (seed {seed})")

        return load

    return ExplorerSession({"a": loader(1), "b": loader(2)}, _data(), keep=keep)


def _state(**values) -> State:
    return State(**{"model": "a", "method": "Grad-CAM", "class_name": "alpha", "layer": "conv2", **values})


def _arrays(frame) -> dict[str, np.ndarray]:
    assert not frame.message, frame.message
    return {name: np.asarray(a) for name, a in frame.explanation.arrays.items()}


# ----------------------------------------------------------------------------- computed once


def test_a_new_image_costs_one_forward_and_grad_cam_of_every_class_one_backward():
    session = _session()
    frame = session.frame(_state())
    assert frame.passes == {"preprocess": 1, "forward": 1, "backward": 1}, frame.passes
    assert set(frame.seconds) >= {"forward", "backward", "weights check"}


def test_a_target_change_in_grad_cam_makes_no_pass():
    session = _session()
    session.frame(_state(target=0))
    for target in (1, 2, 0):
        frame = session.frame(_state(target=target))
        assert frame.passes == {}, (target, frame.passes)
        model = session.entry("a").model
        x = session.data.arrays["test"][0][:1].astype(np.float32)
        np.testing.assert_allclose(_arrays(frame)["grad_cam"], interpret.grad_cam(model, x, target, "conv2"), atol=1e-6)


def test_a_channel_or_neuron_change_in_a_feature_map_makes_no_pass():
    session = _session()
    session.frame(_state(method="feature map + neuron", channel=0))
    for change in (dict(channel=1), dict(channel=5), dict(channel=5, position=(2, 3)), dict(position=(0, 0))):
        frame = session.frame(_state(method="feature map + neuron", **change))
        assert frame.passes == {}, (change, frame.passes)
    session.frame(_state(method="argmax patch", channel=4))
    assert session.frame(_state(method="argmax patch", channel=2)).passes == {}
    assert session.frame(_state(method="all channels")).passes == {}


def test_guided_backprop_of_a_new_neuron_is_exactly_one_backward_pass_and_a_seen_one_none():
    session = _session()
    session.frame(_state(method="guided backprop", channel=3))
    frame = session.frame(_state(method="guided backprop", channel=3, position=(1, 2)))
    assert frame.passes == {"backward": 1}, frame.passes
    assert session.frame(_state(method="guided backprop", channel=3)).passes == {}  # the argmax neuron again
    model = session.entry("a").model
    x = session.data.arrays["test"][0][:1].astype(np.float32)
    again = session.frame(_state(method="guided backprop", channel=3, position=(1, 2)))
    assert again.passes == {}
    np.testing.assert_allclose(
        _arrays(again)["guided_backprop"],
        interpret.guided_backprop(model, x, "conv2", 3, positions=[(1, 2)]),
        rtol=1e-6,
        atol=1e-9,
    )


# ----------------------------------------------------------------------------- never stale


def test_weights_changed_in_place_are_recomputed_not_shown_from_memory():
    session = _session()
    state = _state(method="feature map + neuron", channel=2)
    before = _arrays(session.frame(state))
    model = session.entry("a").model
    layer = model.get_layer("conv2")
    layer.kernel.assign(-layer.kernel.value)  # "retrained" in place: the same model object, new weights
    frame = session.frame(state)
    assert frame.passes.get("forward") == 2, frame.passes  # probabilities and the layer's activations, again
    x = session.data.arrays["test"][0][:1].astype(np.float32)
    fresh = interpret.feature_maps(model, x, ["conv2"])["conv2"][0, ..., 2]
    np.testing.assert_array_equal(_arrays(frame)["feature_map"], fresh)
    assert not np.array_equal(before["feature_map"], fresh)
    np.testing.assert_allclose(frame.probabilities, backend.to_numpy(model(x))[0], rtol=1e-6)


def test_the_example_set_work_follows_the_weights_too():
    session = _session()
    state = _state(method="top-9 patches", channel=1)
    session.frame(state)
    assert session.frame(_state(method="top-9 patches", channel=4)).passes == {}  # maxima kept for the layer
    model = session.entry("a").model
    bias = model.get_layer("conv2").bias
    bias.assign(backend.to_numpy(bias.value) - 0.5 * np.arange(bias.shape[0], dtype=np.float32))
    frame = session.frame(state)
    assert frame.passes.get("example set") == 1, frame.passes
    train = session.data.arrays["train"][0].astype(np.float32)
    top = interpret.top_k_patches(model, train, "conv2", [1], k=9)[1]
    np.testing.assert_array_equal(_arrays(frame)["images"], [p.image for p in top])


def test_kept_frames_equal_fresh_ones_through_a_walk_over_images_models_and_controls():
    kept, fresh = _session(keep=True), _session(keep=False)
    walk = [
        _state(),
        _state(target=2),
        _state(index=1),  # another image
        _state(index=1, model="b"),  # another model, the same image
        _state(index=1, model="b", method="feature map + neuron", channel=3),
        _state(index=1, model="b", method="guided backprop", channel=3, position=(0, 1)),
        _state(index=1, method="guided backprop", channel=3, position=(0, 1)),  # back to model a
        _state(index=0, method="Grad-CAM++", target=1),
        _state(index=0, method="Grad-CAM++", target=0),
        _state(index=0, method="saliency", target=0),
        _state(index=0, method="Grad-CAM", layer="conv1"),
        _state(),
    ]
    for state in walk:
        a, b = kept.frame(state), fresh.frame(state)
        np.testing.assert_array_equal(a.probabilities, b.probabilities)
        assert (a.target, a.layer, a.layer_shape) == (b.target, b.layer, b.layer_shape)
        arrays_a, arrays_b = _arrays(a), _arrays(b)
        assert arrays_a.keys() == arrays_b.keys()
        for name in arrays_a:
            np.testing.assert_array_equal(arrays_a[name], arrays_b[name], err_msg=f"{state}: {name}")
    assert kept.frame(walk[-1]).passes == {}  # the last image and model are still kept


# ----------------------------------------------------------------------------- the parts


def test_image_work_computes_a_key_once_counts_it_and_keeps_at_most_its_limit():
    work = ImageWork("image", limit=2)
    calls = []
    assert work.get("a", "forward", lambda: calls.append("a") or 1) == 1
    assert work.get("a", "forward", lambda: calls.append("a again") or 2) == 1
    work.get("b", "backward", lambda: calls.append("b") or 3)
    work.get("c", "backward", lambda: calls.append("c") or 4)  # drops "a", the least recently used
    assert calls == ["a", "b", "c"] and "a" not in work and len(work) == 2
    assert work.passes == {"forward": 1, "backward": 2}


def test_the_weights_fingerprint_changes_with_one_weight_and_only_then():
    model = small_models.flat_cnn(0, names=("c1", "c2"))
    first = weights_fingerprint(model)
    assert weights_fingerprint(model) == first
    kernel = model.get_layer("head").kernel
    values = kernel.numpy()
    values[3, 1] = np.nextafter(values[3, 1], np.float32(np.inf))  # one bit of one weight
    kernel.assign(values)
    assert weights_fingerprint(model) != first
    twin = small_models.flat_cnn(0, names=("c1", "c2"))  # the same weights (and names) in another model object
    assert weights_fingerprint(twin) != weights_fingerprint(model)
    twin.get_layer("head").kernel.assign(values)
    assert weights_fingerprint(twin) == weights_fingerprint(model)


@pytest.mark.parametrize("method", ["Grad-CAM", "feature map + neuron", "guided backprop"])
def test_a_method_error_still_reports_what_the_frame_computed(method):
    session = _session()
    frame = session.frame(_state(method=method, channel=99))
    if method == "Grad-CAM":  # reads no channel
        assert not frame.message and frame.passes["backward"] == 1
    else:  # the probabilities, and the layer's activations that showed the channel does not exist
        assert "channel 99 does not exist" in frame.message
        assert frame.passes == {"preprocess": 1, "forward": 2}, frame.passes


def test_integrated_gradients_states_its_completeness_with_the_map():
    session = _session()
    frame = session.frame(_state(method="Integrated Gradients", target=1))
    model = session.entry("a").model
    x = session.data.arrays["test"][0][:1].astype(np.float32)
    attributions = interpret.integrated_gradients(model, x, 1)
    check = interpret.completeness(model, x, attributions, 1)
    np.testing.assert_allclose(_arrays(frame)["integrated_gradients"], attributions, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(_arrays(frame)["completeness_error"], check.relative_error[0], rtol=1e-6)
    assert f"score change y(x) - y(0) = {check.changes[0]:.4g}" in frame.explanation.note
    assert session.frame(_state(method="Integrated Gradients", target=1)).passes == {}  # kept with the map
