"""cnnlib.interpret.checks.faithfulness: substrates, per-image curves, smooth random baseline, paired AUC intervals."""

from __future__ import annotations

import numpy as np
import pytest
import small_models
from scipy import ndimage

from cnnlib.interpret.checks import faithfulness as fa

pytestmark = pytest.mark.backends  # run once more on JAX by `make test-jax`


def test_substrates():
    image = np.random.default_rng(0).uniform(0, 255, (32, 32, 3)).astype(np.float32)
    assert not fa.substrate(image, "zero").any()
    np.testing.assert_allclose(fa.substrate(image, "mean")[5, 7], image.mean(axis=(0, 1)), rtol=1e-5)
    rise = fa.substrate(image, "blur", blur_sigma=5.0, blur_radius=5)
    by_hand = np.stack([ndimage.correlate(image[..., c], _kernel(5.0, 5), mode="reflect") for c in range(3)], -1)
    np.testing.assert_allclose(rise, by_hand, rtol=1e-4)
    with pytest.raises(ValueError, match="unknown substrate"):
        fa.substrate(image, "noise")


def _kernel(sigma, radius):
    x = np.arange(-radius, radius + 1)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    g /= g.sum()
    return np.outer(g, g)


def test_rise_settings_curves_end_points():
    model = small_models.project("arch2", n_classes=3)
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 255, (3, 224, 224, 3)).astype(np.float32)
    maps = rng.random((3, 224, 224))
    targets = fa.predicted_classes(model, images)
    curves = fa.deletion_insertion(model, images, maps, targets, steps=4, images_per_batch=2, **fa.RISE_ORIGINAL)
    probs = model.predict(images, verbose=0)
    rows = np.arange(3)
    np.testing.assert_allclose(curves["deletion"][:, 0], probs[rows, targets], rtol=1e-5)
    zero = model.predict(np.zeros_like(images), verbose=0)[rows, targets]
    np.testing.assert_allclose(curves["deletion"][:, -1], zero, rtol=1e-5)  # everything deleted to zero
    blurred = np.stack([fa.substrate(im, "blur", 5.0, 5) for im in images])
    np.testing.assert_allclose(curves["insertion"][:, 0], model.predict(blurred, verbose=0)[rows, targets], rtol=1e-5)
    # batching images together does not change the curves
    one = fa.deletion_insertion(model, images, maps, targets, steps=4, images_per_batch=1, **fa.RISE_ORIGINAL)
    np.testing.assert_allclose(one["deletion"], curves["deletion"], atol=1e-6)
    with pytest.raises(ValueError, match="do not match"):
        fa.deletion_insertion(model, images, maps[:2], targets)


def test_smooth_random_baseline_and_auc_differences():
    model = small_models.project("arch2", n_classes=3)
    rng = np.random.default_rng(2)
    images = rng.uniform(0, 255, (4, 224, 224, 3)).astype(np.float32)
    targets = np.array([0, 1, 2, 0])
    smooth = fa.smooth_random_maps(3)(model, images, targets)
    assert smooth.shape == (4, 224, 224)
    # smooth: neighbouring pixels agree far more than in uniform noise
    assert np.corrcoef(smooth[0, :, :-1].ravel(), smooth[0, :, 1:].ravel())[0, 1] > 0.9
    base = fa.random_baseline(model, images, targets, draws=3, seed=5, steps=4)
    single = [
        fa.deletion_insertion(
            model, images, fa.smooth_random_maps(5 + d)(model, images, targets), targets, steps=4, seed=5 + d
        )["deletion"]
        for d in range(3)
    ]
    np.testing.assert_allclose(base["deletion"], np.mean(single, axis=0), atol=1e-7)
    assert base["deletion_auc_draws"].shape == (3,)
    curves = {"base": base, "smooth": fa.deletion_insertion(model, images, smooth, targets, steps=4)}
    rows = fa.auc_differences(curves, [("smooth", "base")], n_boot=500, seed=1)
    assert [r["curve"] for r in rows] == ["deletion", "insertion"]
    expected = np.mean(fa.auc_per_image(curves["smooth"]["deletion"]) - fa.auc_per_image(base["deletion"]))
    assert rows[0]["difference"] == pytest.approx(expected)
    assert rows == fa.auc_differences(curves, [("smooth", "base")], n_boot=500, seed=1)
    record = fa.curves_record(curves["smooth"], digits=3)
    assert len(record["deletion"]) == 4 and len(record["deletion"][0]) == 5
    assert all(round(v, 3) == v for v in record["insertion"][0])
