"""Paired comparison of two evaluation runs (anpr.cli.compare)."""

from __future__ import annotations

from pathlib import Path

import pytest

from anpr.cli.compare import Outcome, compare, mcnemar_p, read_outcomes, write_outcomes


@pytest.mark.parametrize(
    ("only_before", "only_now", "expected"),
    [(0, 0, 1.0), (1, 5, 14 / 64), (5, 1, 14 / 64), (0, 10, 2 / 1024), (3, 4, 1.0), (0, 5, 2 / 32)],
)
def test_mcnemar_p_is_the_exact_two_sided_binomial_tail(only_before: int, only_now: int, expected: float) -> None:
    assert mcnemar_p(only_before, only_now) == pytest.approx(expected)


def test_mcnemar_p_for_many_discordant_plates() -> None:
    # Beyond 1,024 discordant plates 2**n is no float: the tail is still a plain share.
    assert 0.0 < mcnemar_p(2000, 2100) < 1.0
    assert mcnemar_p(2000, 2000) == 1.0


def test_compare_counts_the_plates_each_run_alone_reads_right() -> None:
    before = [
        Outcome("a.jpg", 0, True, True, "read_right"),
        Outcome("a.jpg", 1, False, False, "wrong_below_reading_floor"),
        Outcome("b.jpg", 0, True, True),
    ]
    now = [
        Outcome("a.jpg", 0, False, True, "read_wrong"),
        Outcome("a.jpg", 1, True, True, "read_right"),
        Outcome("c.jpg", 0, True, True),
    ]
    figures = compare(before, now)
    assert (figures["plates"], figures["only_in_one_run"]) == (2, 2)
    assert figures["exact"] == {
        "right_before": 1,
        "right_now": 1,
        "only_before": 1,
        "only_now": 1,
        "p_value": 1.0,
        # Where each run lost the plate only the other read right.
        "lost_now_at": {"read_wrong": 1},
        "lost_before_at": {"wrong_below_reading_floor": 1},
    }
    folded = figures["folded"]
    assert (folded["right_before"], folded["right_now"], folded["only_before"], folded["only_now"]) == (1, 2, 0, 1)
    assert (folded["lost_now_at"], folded["lost_before_at"]) == ({}, {"wrong_below_reading_floor": 1})


def test_outcomes_round_trip_and_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "o.jsonl"
    outcomes = [Outcome("images/1.jpg", 0, True, False, "read_wrong"), Outcome("images/2.jpg", 1, False, False)]
    write_outcomes(path, outcomes)
    assert read_outcomes(path) == outcomes
    path.write_text(path.read_text() + "\n" + '{"image": "x", "plate": 0, "exact": true}\n')
    with pytest.raises(ValueError, match=r"o.jsonl:4: malformed outcome line"):
        read_outcomes(path)
    path.write_text('{"image": "x", "plate": "0", "exact": true, "folded": true}\n')
    with pytest.raises(ValueError, match=r":1: malformed"):
        read_outcomes(path)
    path.write_text('{"image": "x", "plate": 0, "exact": true, "folded": true, "stage": 3}\n')
    with pytest.raises(ValueError, match=r":1: malformed"):
        read_outcomes(path)
