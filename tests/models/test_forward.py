"""cnnlib.models.forward: compiled predictions in fixed batches: equal to model.predict on the same batches, and each
input's output independent of what else is predicted with it."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlib.models import architectures, forward, training

pytestmark = pytest.mark.backends  # run once more on JAX by `make test-jax`


def test_predict_equals_keras_predict_on_the_same_batches_uint8_and_float():
    training.set_seed(3)
    model = architectures.build_model("arch3", n_classes=4)
    images = np.random.default_rng(3).integers(0, 256, (72, 224, 224, 3), dtype=np.uint8)  # 9 full batches
    expected = model.predict(images, batch_size=forward.FIXED_ROWS, verbose=0)
    for batch_size in (64, 16):  # the caller's batch size does not change the bits
        got = forward.predict(model, images, batch_size=batch_size)
        assert got.dtype == np.float32 and got.shape == (72, 4)
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(forward.predict(model, images.astype(np.float32), batch_size), expected)


def test_an_inputs_output_does_not_depend_on_its_neighbours():
    training.set_seed(6)
    model = architectures.build_model("arch3", n_classes=3)
    images = np.random.default_rng(6).integers(0, 256, (13, 224, 224, 3), dtype=np.uint8)
    together = forward.predict(model, images)
    for i in (0, 4, 12):  # alone, and at another place among other neighbours
        np.testing.assert_array_equal(forward.predict(model, images[i : i + 1])[0], together[i])
        np.testing.assert_array_equal(forward.predict(model, images[[i, 1, 2]])[0], together[i])


def test_compiled_forward_follows_the_current_weights():
    training.set_seed(4)
    model = architectures.build_model("arch1", n_classes=2)
    x = np.random.default_rng(4).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    before = forward.predict(model, x)
    logits = model.get_layer("logits")
    logits.set_weights([w + 0.5 for w in logits.get_weights()])
    after = forward.predict(model, x)
    np.testing.assert_array_equal(after, model.predict(x, verbose=0))
    assert not np.array_equal(before, after)


def test_predict_parts_equals_predict_on_the_concatenation_bit_for_bit():
    training.set_seed(5)
    model = architectures.build_model("arch3", n_classes=3)
    rng = np.random.default_rng(5)
    parts = [rng.uniform(0, 255, (n, 224, 224, 3)).astype(np.float32) for n in (22, 22, 7, 64, 1, 30)]  # 146 rows
    for batch_size in (64, 16, 200):  # batches that cross parts, equal a part, or hold everything
        expected = forward.predict(model, np.concatenate(parts), batch_size)
        got = forward.predict_parts(model, iter(parts), batch_size)
        assert got.shape == (146, 3)
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match="at least one part"):
        forward.predict_parts(model, iter([]))


def test_a_model_predicted_with_is_freed_when_the_caller_drops_it():
    """The compiled function must not keep its model alive (it did: 80 MB per VGG19 base in notebook 08)."""
    import gc
    import weakref

    training.set_seed(6)
    model = architectures.build_model("arch1", n_classes=2, image_size=96)
    forward.predict(model, np.ones((3, 96, 96, 3), np.float32))
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None  # other tests' models may still be in the cache; this one is not
