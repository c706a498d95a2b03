"""Plate formats and syntax-aware correction, table-driven (text only and with reader probabilities)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anpr.recognition.errors import ModelError
from anpr.recognition.formats import load_formats, parse_pattern

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_"
CATALOGUE = load_formats()


@pytest.mark.parametrize(
    ("raw", "text", "format_id", "display"),
    [
        # South Africa, every province: exact readings keep their text and get their format.
        ("CA123456", "CA123456", "za-wc-standard", "CA 123-456"),
        ("CAA123456", "CAA123456", "za-wc-standard", "CAA 123-456"),
        ("CY12345", "CY12345", "za-wc-standard", "CY 12345"),
        ("BC45DFGP", "BC45DFGP", "za-gp-standard", "BC 45 DF GP"),
        ("BCD123GP", "BCD123GP", "za-gp-standard", "BCD 123 GP"),
        ("ND123456", "ND123456", "za-kzn-standard", "ND 123-456"),
        ("ABC123EC", "ABC123EC", "za-ec-standard", "ABC 123 EC"),
        ("ABC123FS", "ABC123FS", "za-fs-standard", "ABC 123 FS"),
        ("ABC123L", "ABC123L", "za-lp-standard", "ABC 123 L"),
        ("ABC123MP", "ABC123MP", "za-mp-standard", "ABC 123 MP"),
        ("ABC123NW", "ABC123NW", "za-nw-standard", "ABC 123 NW"),
        ("ABC123NC", "ABC123NC", "za-nc-standard", "ABC 123 NC"),
        ("HELLOWP", "HELLOWP", "za-wc-personalised", "HELLO WP"),
        ("THABOGP", "THABOGP", "za-gp-personalised", "THABO GP"),
        ("SURFZN", "SURFZN", "za-kzn-personalised", "SURF ZN"),
        # Other countries.
        ("ABC1234", "ABC1234", "br-standard", "ABC-1234"),
        ("ABC1D23", "ABC1D23", "br-mercosur", "ABC1D23"),
        ("AB12CDE", "AB12CDE", "gb-standard", "AB12 CDE"),
        # Letter/digit confusions fixed only where the format demands the other class.
        ("CA12345G", "CA123456", "za-wc-standard", "CA 123-456"),  # G -> 6 in a digit position
        ("CA1Z3456", "CA123456", "za-wc-standard", "CA 123-456"),  # Z -> 2
        ("NDI23456", "NDI23456", "za-kzn-standard", "NDI 23456"),  # also valid as read: N + 2 letters + 5 digits
        ("8C45DFGP", "BC45DFGP", "za-gp-standard", "BC 45 DF GP"),  # 8 -> B in a letter position
        ("BC4SDFGP", "BC45DFGP", "za-gp-standard", "BC 45 DF GP"),  # S -> 5
        ("ABCO234", "ABC0234", "br-standard", "ABC-0234"),  # O -> 0
        ("A8C1234", "ABC1234", "br-standard", "ABC-1234"),  # 8 -> B
        ("ABC12Z4", "ABC1224", "br-standard", "ABC-1224"),  # Z -> 2
    ],
)
def test_correction_text_only(raw: str, text: str, format_id: str, display: str) -> None:
    result = CATALOGUE.correct(raw)
    assert result.format is not None
    assert (result.text, result.format.format_id, result.display_text) == (text, format_id, display)
    assert result.raw_text == raw
    assert len(result.text) == len(raw)  # correction replaces one for one
    assert result.corrections == sum(a != b for a, b in zip(raw, text, strict=True))
    assert 0.0 < result.format.confidence <= 1.0


@pytest.mark.parametrize(
    "raw",
    [
        "5NNY092",  # fits no specific format without a change: a generic one keeps it as read
        "TARHEELS",
        "ABC",
    ],
)
def test_generic_readings_are_not_forced(raw: str) -> None:
    result = CATALOGUE.correct(raw)
    assert result.text == raw


def test_no_text_no_format() -> None:
    result = CATALOGUE.correct("")
    assert (result.text, result.format) == ("", None)


def _probabilities(text: str, overrides: dict[int, dict[str, float]]) -> np.ndarray:
    rows = np.full((len(text), len(ALPHABET)), 1e-4, dtype=np.float32)
    for i, ch in enumerate(text):
        rows[i, ALPHABET.index(ch)] = 0.99
        for other, p in overrides.get(i, {}).items():
            rows[i, ALPHABET.index(other)] = p
    return rows


def test_probabilities_decide_between_confusions() -> None:
    # The reader saw "O" in a digit position; it gives "D" no weight at all but "0" some: O -> 0.
    probs = _probabilities("ABCO234", {3: {"0": 0.3, "D": 1e-6, "Q": 1e-6}})
    result = CATALOGUE.correct("ABCO234", probs, ALPHABET)
    assert result.text == "ABC0234"
    assert result.character_confidences[3] == pytest.approx(0.3)


def test_confident_reader_is_not_overruled() -> None:
    # A US vanity-style reading that a specific format could only reach against overwhelming evidence.
    probs = _probabilities("8BL8976", {0: {"B": 1e-7}})
    result = CATALOGUE.correct("8BL8976", probs, ALPHABET)
    assert result.text == "8BL8976"


def test_same_glyph_certainty_does_not_block_the_syntax() -> None:
    # A CTC reader that is sure of "I" (and gives "1" nothing) where the Brazilian format needs digits: plate fonts
    # draw I and 1 alike, so the syntax decides.
    probs = _probabilities("OUPI4I2", {3: {"1": 1e-9}, 5: {"1": 1e-9}})
    result = CATALOGUE.correct("OUPI4I2", probs, ALPHABET)
    assert result.text == "OUP1412"
    assert result.format is not None
    assert result.format.country_code == "BR"


def test_french_plate_keeps_its_zero() -> None:
    # AB-210-CD: the reader prefers 0 over O in the fifth place, which the British AB21 OCD would need.
    probs = _probabilities("AB210CD", {4: {"0": 0.6, "O": 0.35}})
    result = CATALOGUE.correct("AB210CD", probs, ALPHABET)
    assert result.text == "AB210CD"
    assert result.format is not None
    assert result.format.country_code in {"FR", "IT"}  # the same shape in both countries
    assert result.display_text in {"AB-210-CD", "AB 210 CD"}


def test_specific_formats_are_marked() -> None:
    assert CATALOGUE.correct("CA123456").specific
    assert not CATALOGUE.correct("TARHEELS").specific  # only the US catch-all X{1,8} fits
    assert not CATALOGUE.correct("").specific


def test_hints_prefer_a_country() -> None:
    # Text only, one confusion is not enough evidence to leave the generic format; a GB hint tips it.
    assert CATALOGUE.correct("A812CDE").text == "A812CDE"
    hinted = CATALOGUE.correct("A812CDE", hints=["GB"])
    assert hinted.text == "AB12CDE"
    assert hinted.format is not None
    assert hinted.format.format_id == "gb-standard"
    brazil = CATALOGUE.select(["BR"])
    assert brazil.correct("ABCI234").text == "ABC1234"
    assert brazil.correct("AB12CDE").format is None


@pytest.mark.parametrize(
    ("pattern", "lengths"),
    [("LLL-DDDD", {7}), ("X{1,3}", {1, 2, 3}), ("'C'L{1,2} DDD-DDD", {8, 9}), ("[A-C]D", {2})],
)
def test_pattern_expansion(pattern: str, lengths: set[int]) -> None:
    assert {len(positions) for positions, _ in parse_pattern(pattern)} == lengths


@pytest.mark.parametrize("pattern", ["LL?", "{2}", "L{2}{3}", "'ab'"])
def test_bad_patterns(pattern: str) -> None:
    with pytest.raises(ValueError, match="pattern"):
        parse_pattern(pattern)


def test_operator_catalogue(tmp_path: Path) -> None:
    path = tmp_path / "formats.yaml"
    path.write_text('confusions: ["0O"]\nformats:\n  - id: only-digits\n    country: ZA\n    patterns: ["DDD"]\n')
    catalogue = load_formats(path)
    assert catalogue.correct("1O2").text == "102"
    path.write_text("formats:\n  - id: broken\n    patterns: ['L{']\n")
    with pytest.raises(ModelError, match="broken"):
        load_formats(path)
    path.write_text("nothing: here\n")
    with pytest.raises(ModelError, match="formats"):
        load_formats(path)


def test_a_plate_of_a_catalogued_country_keeps_its_own_characters() -> None:
    # Slovak LL-DDDLL: before Slovakia was in the catalogue, the British LLDD LLL read its 0 as O.
    result = CATALOGUE.correct("NO450AM")
    assert result.format is not None
    assert (result.text, result.format.format_id) == ("NO450AM", "sk-standard")


def test_without_hints_a_foreign_syntax_may_still_correct() -> None:
    result = CATALOGUE.correct("AB12C0E")
    assert result.format is not None
    assert (result.text, result.format.format_id) == ("AB12COE", "gb-standard")


def test_hints_make_other_countries_formats_name_a_reading_but_never_force_it() -> None:
    # Text alone is no evidence: a British shape is not forced on a camera that expects South African plates.
    assert CATALOGUE.correct("AB12C0E", hints=["ZA-WC", "ZA"]).text == "AB12C0E"
    # As read, a foreign plate still gets its format.
    fitting = CATALOGUE.correct("AB12CDE", hints=["ZA"])
    assert fitting.format is not None
    assert (fitting.text, fitting.format.format_id) == ("AB12CDE", "gb-standard")


def test_hints_let_a_foreign_format_change_what_the_reader_nearly_preferred() -> None:
    text = "AB12C0E"
    rows = np.full((len(text), len(ALPHABET)), 1e-4, dtype=np.float32)
    for i, ch in enumerate(text):
        rows[i, ALPHABET.index(ch)] = 0.9
    rows[5, ALPHABET.index("O")] = 0.6  # the reader was torn between 0 and O
    torn = CATALOGUE.correct(text, rows, ALPHABET, hints=["ZA"])
    assert torn.text == "AB12COE"
    rows[5, ALPHABET.index("O")] = 0.2  # sure of the 0: the foreign format may not overrule it
    assert CATALOGUE.correct(text, rows, ALPHABET, hints=["ZA"]).text == text


def test_a_region_hint_names_its_country() -> None:
    # ZA-WC expects South African plates of every province: a Gauteng plate is corrected as before.
    result = CATALOGUE.correct("8C45DFGP", hints=["ZA-WC"])
    assert result.text == "BC45DFGP"
