"""Where a labelled plate was lost: each stage's rule, and the floors a pipeline applies."""

from __future__ import annotations

import pytest

from anpr.cli.losses import DIAGNOSTIC_DETECTION_FLOOR, Floors, floors, stage, unfiltered
from anpr.recognition import Box, PlateReading, PlateResult, RecognitionOptions, RecognitionPipeline
from anpr.recognition.models import MODELS_DIR

LIMITS = Floors(detection=0.3, refined=0.2, reading=0.5)


def _plate(text: str, *, detection: float = 0.9, refined: float | None = 0.9, reading: float = 0.9) -> PlateResult:
    return PlateResult(Box(0, 0, 100, 25), detection, PlateReading(text, text, reading, ()), refined)


def _is_label(text: str) -> bool:
    return text == "CA123456"


def test_a_reported_reading_is_right_or_wrong_whatever_the_second_pass_saw() -> None:
    assert stage(_plate("CA123456"), None, _is_label, LIMITS) == "read_right"
    assert stage(_plate("CA12345"), _plate("CA123456"), _is_label, LIMITS) == "read_wrong"


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        (None, "not_detected"),
        (_plate("CA123456", detection=0.1), "below_detector_floor"),
        (_plate("CA123456", refined=0.1), "below_refiner_floor"),
        (_plate("CA123456", refined=0.0), "below_refiner_floor"),  # the refiner found nothing there
        (_plate("CA123456", reading=0.4), "right_below_reading_floor"),
        (_plate("CA12345", reading=0.4), "wrong_below_reading_floor"),
        (_plate("CA123456", refined=None, reading=0.4), "right_below_reading_floor"),  # no refiner
        (_plate("CA123456"), "left_out"),  # above every floor, yet not reported: consolidation or the plate limit
    ],
)
def test_an_unreported_plate_is_lost_at_the_first_floor_it_missed(candidate: PlateResult | None, expected: str) -> None:
    assert stage(None, candidate, _is_label, LIMITS) == expected


@pytest.mark.skipif(not (MODELS_DIR / "manifest.yaml").is_file(), reason="shipped default models not present")
def test_floors_are_the_ones_the_pipeline_applies() -> None:
    pipeline = RecognitionPipeline.load(MODELS_DIR)
    scoring = pipeline.manifest.scoring
    assert scoring is not None
    default = floors(pipeline, RecognitionOptions())
    assert default == Floors(pipeline.detection_floor, scoring.min_refined_confidence, scoring.min_confidence)
    asked = floors(pipeline, RecognitionOptions(min_reading_confidence=0.9, min_detection_confidence=0.95))
    assert (asked.reading, asked.detection) == (0.9, 0.95)
    # The diagnostic pass keeps the request's regions and drops every floor.
    options = unfiltered(RecognitionOptions(format_hints=("ZA",), min_reading_confidence=0.9))
    assert options.format_hints == ("ZA",)
    assert options.min_detection_confidence == DIAGNOSTIC_DETECTION_FLOOR < pipeline.detection_floor
    assert 0 < (options.min_reading_confidence or 0) < 1e-6
    assert (options.max_plates or 0) > pipeline.config.max_plates


@pytest.mark.skipif(not (MODELS_DIR / "manifest.yaml").is_file(), reason="shipped default models not present")
def test_floors_follow_a_request_below_the_operating_point() -> None:
    pipeline = RecognitionPipeline.load(MODELS_DIR)
    # Asked for unsure readings, every refined box is read; asked for weaker boxes, the detector keeps them.
    unsure = floors(pipeline, RecognitionOptions(min_reading_confidence=0.01, min_detection_confidence=0.1))
    assert (unsure.refined, unsure.detection, unsure.reading) == (0.0, 0.1, 0.01)
