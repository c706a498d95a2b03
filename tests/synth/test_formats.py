"""Every plate format renders, and its label follows the format's syntax."""

from __future__ import annotations

import re

import numpy as np
import pytest

from anpr.synth import FORMATS, SA_FORMATS, render_plate
from anpr.synth.formats import FORMAT_BY_NAME

SA_PROVINCES = {"za-wc", "za-gp", "za-kzn", "za-ec", "za-fs", "za-lp", "za-mp", "za-nw", "za-nc", "za-personal"}


def test_every_province_has_a_format() -> None:
    assert {f.name for f in SA_FORMATS} >= SA_PROVINCES


@pytest.mark.parametrize("name", [f.name for f in FORMATS])
def test_format_renders_and_label_matches_syntax(name: str) -> None:
    rng = np.random.default_rng(7)
    for _ in range(8):
        plate = render_plate(rng, FORMAT_BY_NAME[name], height=40)
        assert plate.image.dtype == np.uint8
        assert plate.image.ndim == 3
        assert plate.image.shape[2] == 3
        assert FORMAT_BY_NAME[plate.format].matches(plate.label), (plate.format, plate.label)
        assert re.fullmatch(r"[0-9A-Z]{1,10}", plate.label)


@pytest.mark.parametrize(
    ("name", "display"),
    [
        ("za-wc", r"C[A-Z]{1,2} (\d{3}-\d{3}|\d{5})"),
        ("za-gp", r"[A-Z]{2} \d{2} [A-Z]{2} GP"),
        ("za-kzn", r"N[A-Z] (\d{3}-\d{3}|\d{5})"),
        ("za-ec", r"[A-Z]{3} \d{3} EC"),
        ("za-lp", r"[A-Z]{3} \d{3} L"),
    ],
)
def test_sa_display_text(name: str, display: str) -> None:
    rng = np.random.default_rng(3)
    for _ in range(10):
        plate = render_plate(rng, FORMAT_BY_NAME[name], height=32)
        assert re.fullmatch(display, plate.display), plate.display


def test_two_row_label_reads_top_row_first() -> None:
    rng = np.random.default_rng(11)
    plate = render_plate(rng, FORMAT_BY_NAME["br-moto"], height=60)
    top, bottom = plate.display.split(" / ")
    assert plate.label == top + bottom
