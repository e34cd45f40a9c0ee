"""interpret.checks.localisation: the pointing game and energy in the box, checked on hand-made maps, and the
benchmark's summary and winner."""

from __future__ import annotations

import numpy as np
import pytest
import small_models

from cnnlib.interpret.checks import localisation

pytestmark = pytest.mark.backends  # run once more on JAX by `make test-jax`


def _maps_with(points, size=64):
    maps = np.zeros((len(points), size, size))
    for i, (r, c) in enumerate(points):
        maps[i, r, c] = 1.0
    return maps


def test_pointing_game_counts_the_peak_inside_the_widened_box():
    boxes = np.array([[10, 10, 20, 20]] * 4)
    maps = _maps_with([(15, 15), (25, 15), (40, 40), (19, 34)])
    np.testing.assert_array_equal(localisation.pointing_hits(maps, boxes, tolerance=0), [True, False, False, False])
    # 25 is 6 rows below the last box row (19), 34 is 15 columns right of the last box column
    np.testing.assert_array_equal(localisation.pointing_hits(maps, boxes, tolerance=15), [True, True, False, True])


def test_a_plateau_peak_is_its_centre_of_mass_and_a_zero_map_misses():
    maps = np.zeros((2, 64, 64))
    maps[0, :40, :40] = 1.0  # a held corner: its centre (19.5, 19.5)
    np.testing.assert_allclose(localisation.peak_positions(maps)[0], [19.5, 19.5])
    assert np.isnan(localisation.peak_positions(maps)[1]).all()
    hits = localisation.pointing_hits(maps, np.array([[15, 15, 25, 25], [0, 0, 64, 64]]), tolerance=0)
    np.testing.assert_array_equal(hits, [True, False])


def test_energy_in_box_is_the_share_of_the_map_inside():
    maps = np.zeros((3, 32, 32))
    maps[0, 4:8, 4:8] = 1.0  # all inside
    maps[1, 4:8, 4:12] = 1.0  # half inside
    boxes = np.array([[4, 4, 8, 8]] * 3)
    np.testing.assert_allclose(localisation.energy_in_box(maps, boxes), [1.0, 0.5, 0.0])  # a zero map scores 0


def test_scores_of_a_model_have_one_entry_per_image_and_rule():
    model = small_models.project("arch1", seed=0)
    x = np.random.default_rng(0).uniform(0, 255, (3, 224, 224, 3)).astype(np.float32)
    scores = localisation.localisation_scores(model, x, [0, 1, 2], np.array([[0, 0, 50, 50]] * 3))
    assert scores["layer"] == "conv2"
    for rule in localisation.UPSAMPLING:
        assert scores[rule]["pointing"].shape == (3,) and scores[rule]["energy"].shape == (3,)
        assert np.all((scores[rule]["energy"] >= 0) & (scores[rule]["energy"] <= 1))
    with pytest.raises(ValueError, match="one target and one"):
        localisation.localisation_scores(model, x, [0, 1], np.array([[0, 0, 50, 50]] * 3))


def test_summary_intervals_differences_and_winner():
    rng = np.random.default_rng(0)
    networks = []
    for _ in range(3):
        networks.append(
            {
                "field": {"pointing": rng.uniform(size=40) < 0.8, "energy": rng.uniform(0.3, 0.5, 40)},
                "aligned": {"pointing": rng.uniform(size=40) < 0.4, "energy": rng.uniform(0.1, 0.3, 40)},
                "resize": {"pointing": rng.uniform(size=40) < 0.4, "energy": rng.uniform(0.1, 0.3, 40)},
            }
        )
    summary = localisation.summarize(networks, n_boot=500)
    assert summary["networks"] == 3 and summary["images"] == 40
    for score in localisation.SCORES:
        for row in summary[score].values():
            assert row["ci"][0] <= row["mean"] <= row["ci"][1]
    field_vs_aligned = summary["differences"]["pointing"]["field - aligned"]
    assert field_vs_aligned["ci"][0] > 0  # 0.8 vs 0.4 on 120 maps: the interval excludes 0
    assert localisation.winner(summary) == "field"
    tied = {"pointing": {"a": {"mean": 0.5}, "b": {"mean": 0.5}}, "energy": {"a": {"mean": 0.1}, "b": {"mean": 0.2}}}
    assert localisation.winner(tied) == "b"  # ties on the pointing game go to energy in the box
