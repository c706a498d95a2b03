"""The refiner's second look: a loose box snaps to the plate in its surroundings; nothing found keeps the box."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from anpr.recognition import Box, RecognitionOptions, RecognitionPipeline
from anpr.recognition.errors import ModelError
from anpr.recognition.manifest import load_manifest
from anpr.recognition.types import Detection
from testkit.plate_models import encode, plate_frame
from testkit.scenes import build_plate_band_detector

PLATE = (200, 150, 160, 40)


def _with_refiner(fake_manifest: Path, model_dir: Path, **extra: object) -> Path:
    manifest = yaml.safe_load(fake_manifest.read_text())
    manifest["refiner"] = {"format": "yolov9-end2end", "path": str(model_dir / "detector.onnx"), **extra}
    path = fake_manifest.with_name("refined.yaml")
    path.write_text(yaml.safe_dump(manifest))
    return path


def test_a_loose_box_snaps_to_the_plate_and_keeps_its_confidence(fake_manifest: Path, model_dir: Path) -> None:
    pipeline = RecognitionPipeline.load(_with_refiner(fake_manifest, model_dir, context=[0.3, 0.5]))
    image = pipeline.decode(encode(plate_frame("CA123456", (640, 360), PLATE)))
    loose = Detection(Box(170, 128, 230, 84), 0.7)  # the plate and its recess, as a coarse detector boxes it
    (refined,) = pipeline.refine([(image, loose)])
    assert refined.confidence == 0.7
    assert refined.refined is not None
    assert refined.refined > 0.5
    for got, want in zip((refined.box.x, refined.box.y, refined.box.width, refined.box.height), PLATE, strict=True):
        assert abs(got - want) <= 4


def test_a_box_the_refiner_finds_nothing_around_is_kept(fake_manifest: Path, tmp_path: Path) -> None:
    # The white-plate band detector finds nothing in a plain grey area.
    refiner = build_plate_band_detector(tmp_path / "bands.onnx")
    manifest = yaml.safe_load(fake_manifest.read_text())
    manifest["refiner"] = {"format": "yolov9-end2end", "path": str(refiner), "input_size": 320}
    path = tmp_path / "bands.yaml"
    path.write_text(yaml.safe_dump(manifest))
    pipeline = RecognitionPipeline.load(path)
    image = pipeline.decode(encode(plate_frame("CA123456", (640, 360), PLATE)))
    empty = Detection(Box(520, 310, 60, 20), 0.4)
    (kept,) = pipeline.refine([(image, empty)])
    assert (kept.box, kept.confidence) == (empty.box, empty.confidence)
    assert kept.refined == 0.0  # the second look found no plate: the gate's and the scorer's evidence


def test_without_a_refiner_boxes_are_read_as_detected(fake_manifest: Path) -> None:
    pipeline = RecognitionPipeline.load(fake_manifest)
    image = pipeline.decode(encode(plate_frame("CA123456", (640, 360), PLATE)))
    loose = Detection(Box(170, 128, 230, 84), 0.7)
    assert pipeline.refiner is None
    assert pipeline.refine([(image, loose)]) == [loose]


def test_recognize_reads_the_refined_box(fake_manifest: Path, model_dir: Path) -> None:
    pipeline = RecognitionPipeline.load(_with_refiner(fake_manifest, model_dir))
    (plate,) = pipeline.recognize([encode(plate_frame("CA123456", (640, 360), PLATE))])[0].plates
    assert abs(plate.box.x - PLATE[0]) <= 4


@pytest.mark.parametrize("context", [[1.0], "wide", [1.0, -1.0], [1.0, 20.0]])
def test_a_bad_context_is_refused(fake_manifest: Path, model_dir: Path, context: object) -> None:
    with pytest.raises(ModelError, match=r"refiner\.context"):
        load_manifest(_with_refiner(fake_manifest, model_dir, context=context))


def test_a_refiner_needs_a_detector(fake_manifest: Path, model_dir: Path) -> None:
    path = _with_refiner(fake_manifest, model_dir)
    manifest = yaml.safe_load(path.read_text())
    del manifest["detector"]
    path.write_text(yaml.safe_dump(manifest))
    with pytest.raises(ModelError, match="refiner but no detector"):
        load_manifest(path)


def test_boxes_the_second_look_scores_below_the_floor_are_not_read(fake_manifest: Path, model_dir: Path) -> None:
    path = _with_refiner(fake_manifest, model_dir)
    manifest = yaml.safe_load(path.read_text())
    manifest["scoring"] = {"weights": {"mean_log_char": 1.0}, "min_confidence": 0.2, "min_refined_confidence": 0.5}
    path.write_text(yaml.safe_dump(manifest))
    pipeline = RecognitionPipeline.load(path)
    sure, unsure = Detection(Box(0, 0, 9, 9), 0.9, refined=0.8), Detection(Box(0, 0, 9, 9), 0.9, refined=0.1)
    assert pipeline.worth_reading([sure, unsure], RecognitionOptions()) == [sure]
    # A caller asking for unsure readings gets every box read.
    assert len(pipeline.worth_reading([sure, unsure], RecognitionOptions(min_reading_confidence=0.01))) == 2
