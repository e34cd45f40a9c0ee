"""Our metrics against Quantus (the explanation-evaluation library) on the same arrays and the same Keras model.

Quantus 0.6 works here with a Keras 3 model when inputs are channel-last (``channel_first=False``) and
attributions are given as (N, 1, H, W). Compared: the deletion curve (Quantus "PixelFlipping": black
baseline, most important first) and the Spearman rank correlation used by the randomisation check.
"""

import numpy as np
import pytest

from cnnlib.interpret.checks import faithfulness, sanity
from cnnlib.models import architectures, training

quantus = pytest.importorskip("quantus", reason="quantus is an optional test dependency (pip install quantus)")

SIZE, STEPS = 96, 16


def _setup():
    training.set_seed(0)
    model = architectures.build_model("arch1", n_classes=3, image_size=SIZE)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (4, SIZE, SIZE, 3)).astype(np.float32)
    maps = rng.random((4, SIZE, SIZE)).astype(np.float32)  # distinct values: no ties to break
    return model, x, np.array([0, 1, 2, 0]), maps


def test_deletion_curve_equals_quantus_pixel_flipping():
    model, x, y, maps = _setup()
    ours = faithfulness.deletion_insertion(
        model, x, maps, y, steps=STEPS, deletion_substrate="zero", insertion_substrate="zero"
    )["deletion"]
    metric = quantus.PixelFlipping(
        features_in_step=SIZE * SIZE // STEPS,
        perturb_baseline="black",
        disable_warnings=True,
        display_progressbar=False,
    )
    theirs = np.asarray(
        metric(model=model, x_batch=x, y_batch=y, a_batch=maps[:, None], channel_first=False, softmax=True)
    )
    # Quantus flips (colour, pixel) features, features_in_step of them per step, and broadcasts our (H, W) map
    # over the colours: after 3 of its steps exactly H * W / STEPS whole pixels are black, which is one of our
    # steps. It also leaves out fraction 0. Tolerance: float32 round-off of different batch compositions.
    assert theirs.shape == (4, 3 * STEPS)
    np.testing.assert_allclose(ours[:, 1:], theirs[:, 2::3], rtol=0, atol=1e-5)
    assert np.ptp(ours) > 1e-3  # the curves do move, so agreeing is not trivial


def test_spearman_equals_quantus():
    rng = np.random.default_rng(1)
    a = rng.random((5, 30, 30))
    b = a + rng.normal(0, 0.3, a.shape)
    ours = sanity.map_similarity(a, b)["spearman"]
    theirs = quantus.similarity_func.correlation_spearman(a.reshape(5, -1), b.reshape(5, -1), batched=True)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    assert 0.2 < ours.mean() < 0.99  # a real test: neither identical nor unrelated maps
