"""The trainers' shared options refuse a step count the one-cycle schedule cannot run (needs torch: skipped without)."""

from __future__ import annotations

import argparse

import pytest

pytest.importorskip("torch")

from anpr.training.common import MIN_STEPS, add_run_arguments  # after the torch check


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_run_arguments(parser, steps=100, batch=4, lr=1e-3)
    return parser


def test_steps_below_the_schedule_minimum_are_refused() -> None:
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(["--steps", str(MIN_STEPS - 1)])
    assert exit_info.value.code == 2


def test_steps_at_the_minimum_and_default_are_accepted() -> None:
    assert _parser().parse_args(["--steps", str(MIN_STEPS)]).steps == MIN_STEPS
    assert _parser().parse_args([]).steps == 100


@pytest.mark.parametrize("stage", ["ctc-reader", "detector", "export", "calibrate", "fuse", "evaluate"])
def test_every_stage_prints_its_help(stage: str, capsys: pytest.CaptureFixture[str]) -> None:
    # argparse formats help strings with %: a bare "%" in one made `detector --help` crash.
    from anpr.training.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main([stage, "--help"])
    assert exit_info.value.code == 0
    assert "usage: python -m anpr.training " + stage in capsys.readouterr().out
