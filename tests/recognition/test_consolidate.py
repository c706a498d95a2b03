"""One result per plate: fragment unions before reading, partial duplicates dropped after (consolidate.py)."""

from __future__ import annotations

import pytest

from anpr.recognition import (
    Box,
    Detection,
    FormatMatch,
    PipelineConfig,
    PlateReading,
    PlateResult,
    RecognitionPipeline,
)
from anpr.recognition.consolidate import (
    drop_partial_duplicates,
    fragment_union,
    keep_plates,
    line_chains,
    select_for_reading,
)
from anpr.recognition.models import MODELS_DIR
from testkit.plate_models import DATA_DIR

BR_PHOTOS = DATA_DIR / "openalpr-br" / "images"
BR_FORMAT = FormatMatch("br-old", "BR", "", 0.9)


def _plate(x: float, y: float, w: float, h: float, text: str, *, fmt: FormatMatch | None = None) -> PlateResult:
    reading = PlateReading(
        text=text, raw_text=text, confidence=0.9, character_confidences=(0.9,) * len(text), format=fmt
    )
    return PlateResult(Box(x, y, w, h), 0.5, reading)


def test_pieces_of_one_line_get_their_union() -> None:
    pieces = [  # best first, as the detector gives them
        Detection(Box(900, 150, 100, 30), 0.9),  # elsewhere in the frame
        Detection(Box(80, 145, 187, 120), 0.73),
        Detection(Box(205, 159, 178, 88), 0.45),
        Detection(Box(279, 156, 171, 87), 0.29),
    ]
    chains = line_chains(pieces)
    assert [len(c) for c in chains] == [1, 3]  # best chain first: the lone 0.9 box
    assert fragment_union(chains[0]) is None
    union = fragment_union(chains[1])
    assert union is not None
    box = union.box
    assert (box.x, box.y, box.x2, box.y2) == (80, 145, 450, 265)
    assert union.confidence == 0.73


def test_the_plate_limit_counts_plates_not_boxes() -> None:
    """A plate's partial boxes cannot push the whole box of the same plate, or another plate, out of the reading."""
    plate_parts = [Detection(Box(312, 652, 379, 176), 0.62), Detection(Box(435, 670, 363, 137), 0.32)]
    others = [Detection(Box(100 * i, 10, 60, 20), 0.5 - 0.01 * i) for i in range(4)]
    detections = sorted(plate_parts + others, key=lambda d: -d.confidence)
    chosen = select_for_reading(detections, limit=3)
    assert chosen[:4] == [plate_parts[0], others[0], others[1], plate_parts[1]]
    assert len(chosen) == 5  # ... and the union of the plate's two boxes
    assert (chosen[4].box.x, chosen[4].box.x2) == (312, 798)


def test_reading_stays_bounded_on_frames_full_of_overlapping_lines() -> None:
    # Ten lines of text, each found as six overlapping boxes: 60 boxes, ten chains.
    detections = [
        Detection(Box(40 * i, 50 * line, 100, 30), 0.9 - 0.01 * line - 0.001 * i)
        for line in range(10)
        for i in range(6)
    ]
    detections.sort(key=lambda d: -d.confidence)
    chosen = select_for_reading(detections, limit=5)
    boxes = [d for d in chosen if d.box.width == 100]
    assert len(boxes) == 12  # 4 boxes of each of the first chains until 2 x 5 boxes are taken
    assert len(chosen) == 15  # ... and the union of each of those three chains


@pytest.mark.parametrize(
    "boxes",
    [
        [Box(0, 0, 100, 30), Box(100, 0, 100, 30)],  # touching, not overlapping: two plates side by side
        [Box(0, 0, 100, 30), Box(50, 20, 100, 30)],  # overlapping but on different lines
        [Box(0, 0, 100, 30), Box(50, 0, 100, 80)],  # heights too different (a plate and the car around it)
        [Box(0, 0, 100, 30), Box(5, 2, 100, 28)],  # the same box twice: the union is no wider
    ],
)
def test_no_union_for_boxes_that_are_not_pieces_of_one_line(boxes: list[Box]) -> None:
    assert all(fragment_union(chain) is None for chain in line_chains([Detection(b, 0.5) for b in boxes]))


def test_partial_readings_beside_the_whole_plate_are_dropped() -> None:
    plates = [
        _plate(407, 801, 411, 115, "JST2699", fmt=BR_FORMAT),
        _plate(843, 68, 18, 6, ""),  # elsewhere: kept
        _plate(315, 794, 306, 126, "JST2"),
        _plate(426, 770, 297, 100, "IST26"),  # part of the plate with one character misread
        _plate(600, 790, 200, 120, ""),  # an empty reading on the plate
    ]
    assert drop_partial_duplicates(plates) == [0, 1]


def test_overlapping_boxes_that_read_different_plates_are_both_kept() -> None:
    plates = [_plate(0, 0, 200, 60, "CA123456"), _plate(100, 10, 200, 60, "ND98765")]
    assert drop_partial_duplicates(plates) == [0, 1]


def test_a_box_inside_a_plate_read_to_a_format_is_dropped() -> None:
    plates = [_plate(100, 100, 60, 30, "K0S"), _plate(80, 90, 370, 120, "PVX0095", fmt=BR_FORMAT)]
    assert drop_partial_duplicates(plates) == [1]


def test_the_longer_reading_wins_when_neither_matches_a_format() -> None:
    plates = [_plate(80, 145, 187, 120, "PVX0"), _plate(80, 145, 370, 120, "PVX0095")]
    assert drop_partial_duplicates(plates) == [1]


def test_the_plate_limit_drops_the_weakest_plates_not_a_weaker_box_of_a_plate() -> None:
    plates = [_plate(100 * i, 10, 60, 20, f"AB{i}CD") for i in range(3)]
    plates += [_plate(400, 300, 300, 100, "NZM54"), _plate(450, 310, 300, 90, "NZM5430", fmt=BR_FORMAT)]
    confidences = [0.5, 0.45, 0.4, 0.62, 0.32]
    plates = [PlateResult(p.box, c, p.reading) for p, c in zip(plates, confidences, strict=True)]
    # NZM54 is part of NZM5430; the whole reading came from the weaker box and outranks only by its chain.
    assert keep_plates(plates, 2) == [0, 4]


@pytest.mark.skipif(not (BR_PHOTOS / "PVX0095.jpg").is_file(), reason="openalpr-br not present in ../shared/data")
def test_a_close_up_found_in_pieces_gives_one_result() -> None:
    """openalpr-br's PVX0095 (460 px of a 1280-px photo): the shipped detector finds it in overlapping pieces, each
    read alone (partial readings such as VX009); consolidated, the plate gives one result."""
    data = (BR_PHOTOS / "PVX0095.jpg").read_bytes()
    plate = Box(34, 115, 460, 149)

    def texts_on_plate(consolidate: bool) -> list[str]:
        pipeline = RecognitionPipeline.load(MODELS_DIR, config=PipelineConfig(consolidate=consolidate))
        result = pipeline.recognize([data])[0]
        return [p.reading.text for p in result.plates if p.box.iou(plate) > 0.2]

    assert len(texts_on_plate(False)) > 1
    assert len(texts_on_plate(True)) == 1
