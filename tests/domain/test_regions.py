"""Plate region codes: one set of rules for cameras (ingest) and images (recognize)."""

from __future__ import annotations

import pytest

from anpr.domain.regions import MAX_REGIONS, normalise_regions
from anpr.runtime.errors import InvalidArgument


def test_codes_are_normalised_and_kept_in_order_without_repeats() -> None:
    assert normalise_regions(["za-wc", "ZA", "za"], "f") == ("ZA-WC", "ZA")


@pytest.mark.parametrize("bad", ["", " ZA", "Z", "ZAF", "ZA-", "ZA-WCXX", "ZA\n", "1A", "ZA WC", "²A"])
def test_bad_codes_are_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="plate_regions"):
        normalise_regions([bad], "plate_regions")


def test_at_most_eight() -> None:
    codes = [f"A{chr(ord('A') + i)}" for i in range(MAX_REGIONS + 1)]
    with pytest.raises(InvalidArgument, match="at most"):
        normalise_regions(codes, "plate_regions")
