"""cnnlib.run.idle_lane: which runs it trains ahead of notebook 08 and when it starts one (that a model two processes
want at once is trained once: tests/models/test_training.py, the model cache's lock)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cnnlib.run import idle_lane, notebooks


def test_runs_are_notebook_08s_in_reverse_without_the_one_notebooks_02_03_trained():
    runs = idle_lane.planned_runs(seeds=(42, 43, 44), split_seeds=(42, 1, 2), seed=42)
    assert runs == [(2, 42), (1, 42), (42, 44), (42, 43)]
    assert idle_lane.planned_runs() == [(2, 42), (1, 42), (42, 46), (42, 45), (42, 44), (42, 43)]  # the defaults


def test_a_run_starts_only_after_a_core_was_idle_for_several_samples_in_a_row():
    samples = iter([1.0, 0.2, 1.0, 0.7, 0.9, 1.0, 0.0])  # a busy sample restarts the count
    taken = []

    def idle():
        taken.append(next(samples))
        return taken[-1]

    assert idle_lane.wait_for_idle_core(lambda: True, idle)
    assert taken == [1.0, 0.2, 1.0, 0.7, 0.9]  # three idle samples of 2 s after the busy one
    assert not idle_lane.wait_for_idle_core(lambda: False, idle)  # the job it fills ended: no run starts


def test_idle_cores_is_between_none_and_every_core():
    assert 0.0 <= idle_lane.idle_cores(0.2) <= (os.cpu_count() or 1) + 1e-6


def test_the_runner_fills_the_idle_lane_only_in_the_stage_with_notebook_08(monkeypatch):
    entered = []

    class Recorder:
        def __enter__(self):
            entered.append(True)

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(idle_lane, "filled", Recorder)
    monkeypatch.setattr(notebooks, "execute", lambda path: notebooks.Executed(0.0, 0.0))
    names = ["01_a.ipynb", "02_b.ipynb", "03_c.ipynb", "05_d.ipynb", "08_e.ipynb"]
    notebooks.run([Path(n) for n in names], jobs=2)
    assert entered == [True]  # once: the last stage
    notebooks.run([Path(n) for n in names], jobs=1)  # one at a time: the user asked for one process
    notebooks.run([Path(n) for n in names[:4]], jobs=2)  # no 08: nothing to train ahead
    assert entered == [True]


@pytest.mark.parametrize("argv", [[], ["--"]])
def test_the_command_line_without_a_command_says_how_to_use_it(argv):
    with pytest.raises(SystemExit, match="usage: python -m cnnlib.run.idle_lane -- COMMAND"):
        idle_lane.main(argv)


def test_the_command_line_returns_the_commands_exit_code():
    with pytest.raises(SystemExit) as stopped:
        idle_lane.main(["--", "sh", "-c", "exit 3"])
    assert stopped.value.code == 3
