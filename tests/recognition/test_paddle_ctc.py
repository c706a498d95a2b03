"""The ``paddleocr-ctc`` reader adapter: greedy decoding, dictionaries, batching, two-row reading, contract errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from anpr.recognition.errors import ModelError
from anpr.recognition.manifest import ReaderSpec
from anpr.recognition.paddle_ctc import (
    CPU_MAX_BATCH,
    HIDDEN,
    PLATE_ALPHABET,
    SLOT_ALPHABET,
    PaddleOcrCtcReader,
    ctc_classes,
    decode_ctc,
    parse_dictionary,
)
from anpr.recognition.reader import create_reader
from testkit.plate_models import build_constant_reader, build_ctc_reader, ctc_frames

PLATE_KEYS = "\n".join(PLATE_ALPHABET)
TEXT = "CA12345G"


def _classes(text: str) -> list[int | dict[int, float]]:
    return [PLATE_ALPHABET.index(ch) + 1 for ch in text]


def _spec(path: Path, **fields: Any) -> ReaderSpec:
    return ReaderSpec("paddleocr-ctc", path, None, "test-ctc", "1", **({"min_width": 32, "max_width": 256} | fields))


def _white(width: int, height: int = 48) -> npt.NDArray[np.uint8]:
    return np.full((height, width, 3), 255, dtype=np.uint8)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Reads CA12345G (two frames per character at 0.9, a blank between) from a white line, 8 px per frame."""
    path = tmp_path_factory.mktemp("ctc") / "rec.onnx"
    return build_ctc_reader(path, ctc_frames(_classes(TEXT), len(PLATE_ALPHABET) + 1), characters=PLATE_KEYS)


# Decoding ---------------------------------------------------------------------------------------------------------


def _frame(count: int, named: dict[int, float]) -> npt.NDArray[np.float32]:
    row = np.full(count, (1.0 - sum(named.values())) / (count - len(named)), dtype=np.float32)
    for index, p in named.items():
        row[index] = p
    return row


def test_greedy_decoding_collapses_drops_and_folds_case() -> None:
    dictionary = ["A", "B", "1", "-", "a"]  # plus a space class: 7 classes
    blank, a_upper, b_upper, one, dash, a_lower, space = range(7)
    frames = np.stack(
        [
            _frame(7, {a_upper: 0.6}),
            _frame(7, {a_upper: 0.7}),  # the same run: one A, whose peak frame is this one
            _frame(7, {blank: 0.9}),
            _frame(7, {a_upper: 0.8}),  # after a blank: a second A
            _frame(7, {dash: 0.9}),  # a separator: dropped
            _frame(7, {b_upper: 0.9}),
            _frame(7, {space: 0.9}),  # the space class: dropped
            _frame(7, {a_lower: 0.5, a_upper: 0.3, b_upper: 0.1}),  # lower case: an A, both columns summed
            _frame(7, {one: 0.9}),
            _frame(7, {blank: 0.9}),
        ]
    )
    (reading,) = decode_ctc(frames[None], ctc_classes(dictionary, 7, "m.onnx"))
    assert reading.text == "AABA1"
    assert reading.character_confidences == pytest.approx((0.7, 0.8, 0.9, 0.5, 0.9))
    assert reading.confidence == pytest.approx(0.7 * 0.8 * 0.9 * 0.5 * 0.9)
    assert reading.probabilities.shape == (5, len(PLATE_ALPHABET))
    assert reading.slot_probabilities.shape == (5, len(SLOT_ALPHABET))
    assert reading.probabilities.sum(axis=1) == pytest.approx(np.ones(5))  # renormalised over the 36 characters
    folded = reading.slot_probabilities[3]
    a, b, d1 = (PLATE_ALPHABET.index(ch) for ch in "AB1")
    assert folded[[a, b, d1]] == pytest.approx([0.8, 0.1, 0.025])
    assert folded[-1] == pytest.approx(0.075)  # blank, dash and space (0.025 each): the pad column
    assert folded.sum() == pytest.approx(1.0)
    assert reading.probabilities[3, a] == pytest.approx(0.8 / 0.925)


def test_hidden_character_marks_are_counted_not_read() -> None:
    """The hidden-character class is no plate character: each run of it counts once and adds nothing to the text;
    a dictionary without it counts none."""
    dictionary = ["A", "B", HIDDEN]
    blank, a_upper, b_upper, hidden = range(4)
    frames = np.stack(
        [
            _frame(4, {a_upper: 0.9}),
            _frame(4, {hidden: 0.8}),
            _frame(4, {hidden: 0.7}),  # the same run
            _frame(4, {b_upper: 0.9}),
            _frame(4, {blank: 0.9}),
            _frame(4, {hidden: 0.6}),  # a second run
        ]
    )
    classes = ctc_classes(dictionary, 4, "m.onnx")
    (reading,) = decode_ctc(frames[None], classes)
    assert (reading.text, reading.hidden) == ("AB", 2)
    assert reading.character_confidences == pytest.approx((0.9, 0.9))
    assert classes.column[hidden] == len(PLATE_ALPHABET)  # its mass goes to the pad column of the slot rows
    without = frames[None, :, :3] / frames[None, :, :3].sum(-1, keepdims=True)
    (plain,) = decode_ctc(without, ctc_classes(["A", "B"], 3, "m.onnx"))
    assert plain.hidden == 0


def test_empty_reading_has_zero_confidence() -> None:
    (reading,) = decode_ctc(ctc_frames([], 37, frames=8)[None], ctc_classes(list(PLATE_ALPHABET), 37, "m.onnx"))
    assert (reading.text, reading.confidence, reading.character_confidences) == ("", 0.0, ())
    assert reading.probabilities.shape == (0, 36)
    assert reading.slot_probabilities.shape == (0, 37)


def test_class_count_must_fit_the_dictionary() -> None:
    assert ctc_classes(["A", "B"], 3, "m.onnx").count == 3
    assert ctc_classes(["A", "B"], 4, "m.onnx").count == 4  # with the space class
    with pytest.raises(ModelError, match=r"m\.onnx: the output has 5 classes, but a dictionary of 2"):
        ctc_classes(["A", "B"], 5, "m.onnx")


def test_dictionary_lines() -> None:
    assert parse_dictionary("A\r\nb\n \n-\n") == ["A", "b", " ", "-"]
    assert parse_dictionary("0\n1") == ["0", "1"]
    # Multi-character entries and characters that upper-case to several letters are dropped, not mis-mapped.
    classes = ctc_classes(["AB", "ß", "z"], 4, "m.onnx")
    assert classes.column.tolist() == [36, 36, 36, PLATE_ALPHABET.index("Z")]


# The reader on test-built models -----------------------------------------------------------------------------------


def test_reads_a_batch_of_mixed_widths(model: Path) -> None:
    reader = create_reader(_spec(model))
    assert isinstance(reader, PaddleOcrCtcReader)
    assert (reader.input_width, reader.input_height, reader.classes.count) == (256, 48, 37)
    assert reader.max_batch == CPU_MAX_BATCH  # small chunks on the CPU; narrowest lines are batched together
    # 8 px per frame, three frames per character: the width decides how much of the text is read.
    crops = [_white(48), _white(192), _white(96), _white(24)]
    readings = reader.read(crops)
    assert [r.text for r in readings] == ["CA", TEXT, "CA12", "CA"]  # 24 px -> min_width 32 px: four frames
    assert readings[1].confidence == pytest.approx(0.9**8, rel=1e-4)
    # Padding to the widest line reads as blanks: one line at a time, or two per call, gives the same readings.
    alone = [reader.read([crop])[0] for crop in crops]
    chunked = PaddleOcrCtcReader(_spec(model), max_batch=2).read(crops)
    for a, b, c in zip(readings, alone, chunked, strict=True):
        assert a.text == b.text == c.text
        assert a.confidence == pytest.approx(b.confidence) == pytest.approx(c.confidence)
    assert reader.read([]) == []


def test_width_scale_and_limits(model: Path) -> None:
    assert PaddleOcrCtcReader(_spec(model, width_scale=0.5)).read([_white(192)])[0].text == "CA12"
    assert PaddleOcrCtcReader(_spec(model, max_width=96)).read([_white(192)])[0].text == "CA12"


def test_two_row_crops_keep_the_surer_reading(model: Path) -> None:
    reader = PaddleOcrCtcReader(_spec(model, two_row_below=2.0))
    two_rows = _white(96, 64)
    two_rows[26:38] = 150  # a grey gap between the rows: the one-line reading is faint in the centre rows
    one_row = _white(96, 64)
    wide = _white(192, 48)  # aspect 4: never split
    got = reader.read([two_rows, one_row, wide])
    # Split, the two-row crop reads as one long line (the halves side by side), surer than its faint one-line read.
    assert got[0].text == TEXT
    assert got[0].confidence == pytest.approx(0.9**8, rel=1e-4)
    # The one-row crop also goes through split_rows, but that reading (more characters) is less sure.
    assert got[1].text == "CA1"
    assert got[1].confidence == pytest.approx(0.9**3, rel=1e-4)
    assert got[2].text == TEXT
    # The layout not kept rides along for the syntax to weigh; a crop never split has none.
    assert [r.other_layout.text if r.other_layout else None for r in got] == ["CA1", TEXT, None]
    # With two-row reading off, the two-row crop keeps its faint one-line reading.
    off = PaddleOcrCtcReader(_spec(model)).read([two_rows, one_row])
    assert [r.text for r in off] == ["CA1", "CA1"]
    assert off[0].confidence < 0.01
    assert off[0].other_layout is None


def test_dictionary_file_with_space_class_and_lower_case(tmp_path: Path) -> None:
    keys = ["c", "-", "a", "1", "2"]
    path = build_ctc_reader(tmp_path / "rec.onnx", ctc_frames([1, 2, 6, 3, 4, 5], len(keys) + 2))  # no metadata
    (tmp_path / "keys.txt").write_text("\ufeff" + "\n".join(keys) + "\n", encoding="utf-8")
    reader = PaddleOcrCtcReader(_spec(path, dictionary=tmp_path / "keys.txt"))
    assert reader.dictionary == keys
    (reading,) = reader.read([_white(256)])
    assert reading.text == "CA12"  # c, -, space, a, 1, 2: the separator and the space are dropped


def test_dynamic_height_comes_from_the_manifest(tmp_path: Path) -> None:
    path = build_ctc_reader(
        tmp_path / "rec.onnx", ctc_frames(_classes(TEXT), 37), characters=PLATE_KEYS, height=32, dynamic_height=True
    )
    assert PaddleOcrCtcReader(_spec(path, input_height=32)).read([_white(96, 16)])[0].text == TEXT
    default = PaddleOcrCtcReader(_spec(path))
    assert default.input_height == 48


def test_fixed_width_model_pads_every_line(tmp_path: Path) -> None:
    path = build_ctc_reader(
        tmp_path / "rec.onnx", ctc_frames(_classes(TEXT), 37), characters=PLATE_KEYS, fixed_width=96
    )
    reader = PaddleOcrCtcReader(_spec(path))
    assert reader.input_width == 96
    assert [r.text for r in reader.read([_white(48), _white(400)])] == ["CA", "CA12"]


def test_contract_errors(model: Path, tmp_path: Path) -> None:
    bare = build_ctc_reader(tmp_path / "bare.onnx", ctc_frames([1], 37))
    with pytest.raises(ModelError, match="no dictionary"):
        PaddleOcrCtcReader(_spec(bare))
    keys = tmp_path / "keys.txt"
    keys.write_text("A\nB\n", encoding="utf-8")
    with pytest.raises(ModelError, match=r"bare\.onnx: the output has 37 classes, but a dictionary of 2"):
        PaddleOcrCtcReader(_spec(bare, dictionary=keys))
    keys.write_text("", encoding="utf-8")
    with pytest.raises(ModelError, match="empty"):
        PaddleOcrCtcReader(_spec(bare, dictionary=keys))
    keys.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ModelError, match="could not be read"):
        PaddleOcrCtcReader(_spec(bare, dictionary=keys))
    with pytest.raises(ModelError, match="input height is 48, the manifest's input_height 32"):
        PaddleOcrCtcReader(_spec(model, input_height=32))
    fixed_slots = build_constant_reader(tmp_path / "fpo.onnx", "AB")
    with pytest.raises(ModelError, match="float32"):
        PaddleOcrCtcReader(_spec(fixed_slots))


def test_narrow_crop_with_nothing_on_one_line_is_not_read_again(model: Path) -> None:
    # A dark band through the centre: the one-line reading holds no character, so the crop is not read as two
    # rows (which would have read the white halves), as a detector box with nothing to read is not.
    reader = PaddleOcrCtcReader(_spec(model, two_row_below=2.0))
    banded = _white(96, 64)
    banded[26:38] = 0
    got = reader.read([banded])[0]
    assert (got.text, got.confidence) == ("", 0.0)


def test_a_line_reads_the_same_whatever_shares_its_batch() -> None:
    """The shipped recogniser attends across the whole line: padded to a wider neighbour, a line read differently.
    Lines are batched by width, never padded, so a reading does not depend on the rest of the batch."""
    from anpr.recognition import load_manifest
    from anpr.recognition.models import MODELS_DIR
    from anpr.recognition.reader import create_reader

    reader = create_reader(load_manifest(MODELS_DIR).reader)
    rng = np.random.default_rng(3)
    narrow = rng.integers(0, 255, (48, 130, 3), dtype=np.uint8)
    wide = rng.integers(0, 255, (40, 300, 3), dtype=np.uint8)
    alone = reader.read([narrow])[0]
    together = reader.read([wide, narrow, wide])[1]
    np.testing.assert_array_equal(alone.slot_probabilities, together.slot_probabilities)
