"""Domain results to the recognize contract: a partial reading says how many runs of characters it could not read."""

from __future__ import annotations

from anpr.recognition.types import PlateReading
from anpr.recognize.convert import reading_to_proto


def test_a_partial_reading_carries_its_hidden_characters() -> None:
    partial = reading_to_proto(PlateReading("CA1456", "CA1456", 0.02, (0.9,) * 6, hidden_characters=1))
    assert (partial.text, partial.hidden_characters) == ("CA1456", 1)
    whole = reading_to_proto(PlateReading("CA123456", "CA123456", 0.97, (0.99,) * 8))
    assert whole.hidden_characters == 0
