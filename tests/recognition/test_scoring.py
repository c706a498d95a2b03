"""The reading scorer: features, the calibrated confidence and the floors it brings, and its manifest entry."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from anpr.recognition import Box, PipelineConfig, PlateReading, PlateResult, RecognitionOptions, RecognitionPipeline
from anpr.recognition.errors import ModelError
from anpr.recognition.manifest import load_manifest
from anpr.recognition.scoring import FEATURES, PlateScorer, features, parse_scorer
from anpr.recognition.types import FormatMatch
from testkit.plate_models import encode, plate_frame


def _plate(text: str, confidences: tuple[float, ...], detection: float = 0.8, specific: bool = True) -> PlateResult:
    fmt = FormatMatch("za-wc-standard", "ZA", "ZA-WC", 0.9, specific) if text else None
    reading = PlateReading(text, text, math.prod(confidences), confidences, format=fmt)
    return PlateResult(Box(10, 10, 200, 50), detection, reading)


def test_features_describe_a_reading_as_a_plate() -> None:
    values = features(_plate("CA123456", (0.9,) * 7 + (0.5,)))
    assert set(values) == set(FEATURES)
    assert values["min_log_char"] == pytest.approx(math.log(0.5))
    assert values["length_1_2"] == values["length_over_10"] == 0.0
    assert values["specific_format"] == 1.0
    assert values["log_aspect"] == pytest.approx(math.log(4.0))
    assert features(_plate("AB", (0.9, 0.9)))["length_1_2"] == 1.0


def test_the_score_rises_with_the_evidence_and_an_empty_reading_scores_zero() -> None:
    scorer = PlateScorer("t", -2.0, {"min_log_char": 2.0, "detection_logit": 1.0, "specific_format": 1.0})
    sure = scorer.score(_plate("CA123456", (0.99,) * 8))
    unsure = scorer.score(_plate("CA123456", (0.99,) * 7 + (0.3,)))
    weak_box = scorer.score(_plate("CA123456", (0.99,) * 8, detection=0.3))
    assert 0.0 < unsure < sure < 1.0
    assert weak_box < sure
    assert scorer.score(_plate("", ())) == 0.0


def test_a_reading_with_hidden_characters_scores_lower_and_older_scorers_ignore_it() -> None:
    plate = _plate("CA12456", (0.99,) * 7)
    partial = replace(plate, reading=replace(plate.reading, hidden_characters=1))
    assert features(plate)["hidden_characters"] == 0.0
    assert features(partial)["hidden_characters"] == 1.0
    scorer = PlateScorer("t", -2.0, {"min_log_char": 2.0, "detection_logit": 1.0, "hidden_characters": -6.0})
    assert scorer.score(partial) < 0.05 < scorer.score(plate)
    older = PlateScorer("t", -2.0, {"min_log_char": 2.0, "detection_logit": 1.0})  # fitted before the feature
    assert older.score(partial) == older.score(plate)


def test_manifest_entry_round_trips_and_bad_entries_are_refused() -> None:
    scorer = PlateScorer("v1", -1.5, {"mean_log_char": 2.0}, 0.6, 0.3)
    assert parse_scorer(scorer.as_manifest(), "scoring") == scorer
    bad: object
    for bad in (
        "not a mapping",
        {"weights": {}},
        {"weights": {"no_such_feature": 1.0}},
        {"weights": {"mean_log_char": "x"}},
        {"weights": {"mean_log_char": 1.0}, "min_confidence": 2.0},
        {"weights": {"mean_log_char": 1.0}, "surprise": 1},
    ):
        with pytest.raises(ModelError, match="scoring"):
            parse_scorer(bad, "scoring")


def _with_scorer(fake_manifest: Path, scorer: PlateScorer) -> Path:
    """A copy of the manifest with ``scorer`` as its scoring entry."""
    manifest = yaml.safe_load(fake_manifest.read_text())
    manifest["scoring"] = scorer.as_manifest()
    path = fake_manifest.with_name(f"scored-{scorer.min_confidence}-{scorer.min_detection_confidence}.yaml")
    path.write_text(yaml.safe_dump(manifest))
    return path


def test_a_model_set_with_a_scorer_reports_calibrated_confidences_above_its_floor(fake_manifest: Path) -> None:
    frame = encode(plate_frame("X", (640, 360), (200, 150, 160, 40)))
    plain = RecognitionPipeline.load(fake_manifest, config=PipelineConfig(correct=False))
    (before,) = plain.recognize([frame])[0].plates
    scorer = PlateScorer("t", 0.5, {"mean_log_char": 1.0}, min_confidence=0.1)
    scored_manifest = _with_scorer(fake_manifest, scorer)
    assert load_manifest(scored_manifest).scoring == scorer
    scored = RecognitionPipeline.load(scored_manifest, config=PipelineConfig(correct=False))
    (after,) = scored.recognize([frame])[0].plates
    assert after.reading.text == before.reading.text
    assert after.reading.confidence == pytest.approx(scorer.score(before))
    assert after.reading.confidence != pytest.approx(before.reading.confidence)
    # Its floor is the default; a request may ask for a lower one, and gets the unsure readings too.
    strict = replace(scorer, min_confidence=0.999)
    pipeline = RecognitionPipeline.load(_with_scorer(fake_manifest, strict), config=PipelineConfig(correct=False))
    assert pipeline.recognize([frame])[0].plates == ()
    assert len(pipeline.recognize([frame], RecognitionOptions(min_reading_confidence=0.01))[0].plates) == 1
    # Asking for 0 means no floor at all (`anpr read --min-confidence 0`), not the default: the reading comes back.
    assert pipeline.reading_floor(RecognitionOptions(min_reading_confidence=0.0)) == 0.0
    assert len(pipeline.recognize([frame], RecognitionOptions(min_reading_confidence=0.0))[0].plates) == 1


def test_the_scorers_detection_floor_keeps_weak_boxes_from_being_read(fake_manifest: Path) -> None:
    scorer = PlateScorer("t", 0.0, {"mean_log_char": 1.0}, min_detection_confidence=0.999)
    pipeline = RecognitionPipeline.load(_with_scorer(fake_manifest, scorer))
    assert pipeline.detection_floor == 0.999
    frame = encode(plate_frame("X", (640, 360), (200, 150, 160, 40)))
    assert pipeline.recognize([frame])[0].plates == ()
