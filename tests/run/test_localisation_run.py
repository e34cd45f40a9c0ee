"""cnnlib.run.localisation: the benchmark end to end on a tiny setting, and the committed run behind the default."""

from __future__ import annotations

import json

import pytest

from cnnlib import config, interpret
from cnnlib.run import localisation


def test_tiny_benchmark_scores_every_rule_and_names_a_winner():
    payload, example = localisation.run_benchmark(localisation.SMOKE, verbose=False)
    assert [n["architecture"] for n in payload["networks"]] == ["arch1", "arch1"]
    assert payload["methods"] == list(interpret.UPSAMPLING)
    assert payload["pooled"]["networks"] == 2 and payload["pooled"]["images"] == localisation.SMOKE.test
    assert payload["winner"] in interpret.UPSAMPLING
    assert example["model"].name and len(example["test"].images) == localisation.SMOKE.test


def test_a_network_at_chance_is_not_scored():
    assert localisation.above_chance(90, 100, 3, 0.001)
    assert not localisation.above_chance(40, 100, 3, 0.001)


def test_the_default_upsampling_is_the_committed_benchmark_winner():
    """``DEFAULT_UPSAMPLING`` (every CAM's default) is what results/localisation.json found to localise best."""
    stored = json.loads((config.RESULTS_DIR / "localisation.json").read_text())
    assert stored["provenance"]["profile"] == "full"
    assert interpret.DEFAULT_UPSAMPLING == stored["winner"]
    assert stored["methods"] == list(interpret.UPSAMPLING)


@pytest.mark.parametrize("rule", interpret.UPSAMPLING)
def test_every_cam_method_accepts_every_rule(rule):
    import numpy as np
    import small_models

    model = small_models.project("arch1", seed=0)
    x = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    for method in (interpret.grad_cam, interpret.hires_cam, interpret.layer_cam, interpret.grad_cam_plus_plus):
        assert method(model, x, 0, upsample=rule).shape == (1, 224, 224)
    assert interpret.score_cam(model, x, 0, upsample=rule, mask_upsample=rule, channels=2).shape == (1, 224, 224)
