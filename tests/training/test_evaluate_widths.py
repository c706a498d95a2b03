"""``python -m anpr.training evaluate --widths``: the reader scored at other serving line widths (no torch needed)."""

from __future__ import annotations

import argparse

import pytest

from anpr.recognition import load_manifest
from anpr.recognition.models import MODELS_DIR
from anpr.training.evaluate import add_arguments, reader_widths, synthetic_crops


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_width_pairs_are_parsed() -> None:
    assert _parse("--widths", "96:160", "128:192").widths == [(96, 160), (128, 192)]
    assert _parse().widths == []
    assert _parse("--widths", "96:160", "--width-crops", "4000").width_crops == 4000


def test_a_malformed_width_pair_is_refused() -> None:
    with pytest.raises(SystemExit) as exit_info:
        _parse("--widths", "128")
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        _parse("--widths", "160:96")
    assert exit_info.value.code == 2


def test_each_width_pair_is_scored_on_the_same_crops() -> None:
    crops = synthetic_crops(6)
    rows = reader_widths(load_manifest(MODELS_DIR), crops, [(96, 160), (160, 160)])
    assert [(r["min_width"], r["max_width"]) for r in rows] == [(96, 160), (160, 160)]
    # The crops a 160 px minimum can stretch: narrower than 160 / 48 at the reader's height of 48.
    narrow = sum(img.shape[1] * 48 < 160 * img.shape[0] for img, _ in crops)
    assert 0 < narrow < 6  # the seeded held-out crops hold both kinds
    for row in rows:
        assert row["n"] == 6
        assert 0.0 <= row["exact"] <= row["folded"] <= 1.0
        assert row["ms_median"] > 0
        assert row["narrow"]["n"] == narrow
        assert 0.0 <= row["narrow"]["exact"] <= row["narrow"]["folded"] <= 1.0
