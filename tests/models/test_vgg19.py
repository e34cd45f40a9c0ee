"""cnnlib.models.vgg19: weights provenance, the flat classifier, the feature cache. Small (32 x 32) inputs."""

from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving import legacy_h5_format

from cnnlib import config, interpret
from cnnlib.models import training, vgg19

SIZE = 32  # VGG19 notop accepts >= 32; weights do not depend on the input size


def test_random_opt_in_is_seeded_and_labelled():
    base, info = vgg19.load_base({vgg19.ENV_VAR: "random"}, seed=3, image_size=SIZE)
    again, _ = vgg19.load_base({vgg19.ENV_VAR: "random"}, seed=3, image_size=SIZE)
    assert info.source == "random" and not info.is_imagenet and "RANDOM INIT (seed 3)" in info.label
    np.testing.assert_array_equal(
        base.get_layer("block1_conv1").get_weights()[0], again.get_layer("block1_conv1").get_weights()[0]
    )
    assert len([layer for layer in base.layers if "conv" in layer.name]) == 16
    assert len([layer for layer in base.layers if "pool" in layer.name]) == 5


def test_local_weights_file_loads_exactly(tmp_path):
    training.set_seed(11)
    source = keras.applications.VGG19(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    path = tmp_path / vgg19.IMAGENET_NOTOP_FILE
    with h5py.File(path, "w") as fh:  # the legacy HDF5 layout of Keras's published notop file
        legacy_h5_format.save_weights_to_hdf5_group(fh, source)
    base, info = vgg19.load_base({vgg19.ENV_VAR: str(path)}, image_size=SIZE)
    for a, b in zip(source.get_weights(), base.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert info.source == "file" and info.sha256 and not info.is_imagenet  # not the ImageNet bytes
    assert "not the ImageNet file" in info.label


def test_missing_weights_say_how_to_provide_them(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network unreachable (test)")

    monkeypatch.setattr(keras.src.utils.file_utils, "urlretrieve", offline)
    monkeypatch.setattr(keras.src.backend.config, "_KERAS_DIR", str(tmp_path / "keras_home"))
    with pytest.raises(vgg19.WeightsUnavailable) as info:
        vgg19.load_base({}, image_size=SIZE)
    message = str(info.value)
    assert "CNNLIB_VGG19_WEIGHTS=/path/to/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert "CNNLIB_VGG19_WEIGHTS=random" in message and "NOT ImageNet" in message
    with pytest.raises(vgg19.WeightsUnavailable, match="no such file"):
        vgg19.load_base({vgg19.ENV_VAR: str(tmp_path / "absent.h5")}, image_size=SIZE)
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(vgg19.WeightsUnavailable, match="is not a VGG19 notop weights file"):
        vgg19.load_base({vgg19.ENV_VAR: str(bad)}, image_size=SIZE)


def _tiny_arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {
        s: (rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8), np.arange(n, dtype=np.int32) % 2)
        for s, n in (("train", 6), ("val", 4))
    }


def test_classifier_is_flat_and_equals_head_on_features():
    base, info = vgg19.load_base({vgg19.ENV_VAR: "random"}, image_size=SIZE)
    arrays = _tiny_arrays()
    features = vgg19.cached_features(base, info, arrays, split_key="k")
    head, record = vgg19.train_head(features, config.TrainSettings(max_epochs=2, patience=1), n_classes=2)
    model = vgg19.build_classifier(base, head)
    assert model.get_layer("block5_conv4") is base.get_layer("block5_conv4")  # reachable, not nested
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)
    direct = model.predict(vgg19.preprocess(arrays["val"][0]), verbose=0)
    np.testing.assert_allclose(direct, head.predict(features["val"][0], verbose=0), rtol=1e-4, atol=1e-6)
    assert record["epochs_run"] <= 2
    cams = interpret.grad_cam_raw(model, vgg19.preprocess(arrays["val"][0]), [0, 1], layer_name="block5_conv4")
    assert cams.shape == (4, 2, 2, 2)  # logits reachable from the image input through block5_conv4


def test_feature_cache_is_reused_and_rebuilt_when_truncated():
    base, info = vgg19.load_base({vgg19.ENV_VAR: "random"}, image_size=SIZE)
    arrays = _tiny_arrays()
    first = vgg19.cached_features(base, info, arrays, split_key="k")
    files = sorted(config.cache_dir().glob("features/*/*/*.npy"))
    assert len(files) == 10  # one file per image
    files[0].write_bytes(files[0].read_bytes()[:100])  # a truncated cache file must not be trusted
    second = vgg19.cached_features(base, info, arrays, split_key="k")
    for split in arrays:
        np.testing.assert_array_equal(first[split][0], second[split][0])
    vgg19.cached_features(base, info, arrays, split_key="other split")  # the split key is not part of the key
    assert len(list(config.cache_dir().glob("features/*/*/*.npy"))) == 10
    other_base, other_info = vgg19.load_base({vgg19.ENV_VAR: "random"}, seed=99, image_size=SIZE)
    other = vgg19.cached_features(other_base, other_info, arrays, split_key="k")  # other weights: not reused
    assert len(list(config.cache_dir().glob("features/*/*/*.npy"))) == 20
    assert not np.array_equal(other["val"][0], first["val"][0])


def test_trained_head_is_cached_and_keyed_by_features_data_and_seed(monkeypatch):
    arrays, settings, env = _tiny_arrays(), config.TrainSettings(max_epochs=2, patience=1), {vgg19.ENV_VAR: "random"}
    first = vgg19.fit_classifier(arrays, "split-a", settings, seed=1, n_classes=2, env=env)
    with monkeypatch.context() as patched:
        patched.setattr(vgg19, "train_head", lambda *a, **k: pytest.fail("trained again"))
        again = vgg19.fit_classifier(arrays, "split-a", settings, seed=1, n_classes=2, env=env)
    assert again.record == first.record
    for a, b in zip(first.head.get_weights(), again.head.get_weights()):
        np.testing.assert_array_equal(a, b)
    heads = lambda: sorted(p.name for p in config.cache_dir().glob("models/vgg19_head_*.keras"))  # noqa: E731
    assert len(heads()) == 1
    vgg19.fit_classifier(arrays, "split-b", settings, seed=1, n_classes=2, env=env)  # other data
    vgg19.fit_classifier(arrays, "split-a", settings, seed=2, n_classes=2, env=env)  # other seed (and base)
    vgg19.fit_classifier(arrays, "split-a", settings, seed=1, n_classes=2, env=env, weights_seed=7)  # other base
    assert len(heads()) == 4
    uncached = vgg19.fit_classifier(arrays, "split-a", settings, seed=1, n_classes=2, env=env, cache=False)
    for a, b in zip(first.head.get_weights(), uncached.head.get_weights()):
        np.testing.assert_array_equal(a, b)  # the cache returns what training gives


def test_fine_tune_block5_trains_only_block5_and_head():
    base, info = vgg19.load_base({vgg19.ENV_VAR: "random"}, image_size=SIZE)
    arrays = _tiny_arrays()
    features = vgg19.cached_features(base, info, arrays, split_key="k")
    head, _ = vgg19.train_head(features, config.TrainSettings(max_epochs=1, patience=1), n_classes=2)
    model = vgg19.build_classifier(base, head)
    before = {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers if layer.weights}
    vgg19.fine_tune_block5(model, arrays, config.TrainSettings(max_epochs=1, patience=1), learning_rate=1e-3)
    for layer in model.layers:
        if layer.weights:
            changed = any(not np.array_equal(a, b) for a, b in zip(before[layer.name], layer.get_weights()))
            assert changed == (
                layer.name.startswith("block5") and "pool" not in layer.name or layer.name == "logits"
            ), layer.name


def test_empty_weights_setting_is_an_error_not_a_download():
    with pytest.raises(vgg19.WeightsUnavailable, match="set but empty"):
        vgg19.load_base(env={vgg19.ENV_VAR: "  "})
