"""The whole pipeline: batches with bad images, reduced decoding, timing, post-processing, the shipped models."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from anpr.recognition import (
    CorruptImage,
    NotAnImage,
    PipelineConfig,
    RecognitionOptions,
    RecognitionPipeline,
)
from anpr.recognition.manifest import MANIFEST_NAME, load_manifest
from anpr.recognition.models import MODELS_DIR
from anpr.recognition.paddle_ctc import HIDDEN, PLATE_ALPHABET
from anpr.recognition.types import RawReading
from testkit.plate_models import BACKGROUND, build_ctc_reader, ctc_frames, encode, plate_frame

SHIPPED = MODELS_DIR


def test_batch_with_bad_images(fake_manifest: Path) -> None:
    pipeline = RecognitionPipeline.load(fake_manifest)
    good = encode(plate_frame("X", (640, 360), (200, 150, 160, 40)))
    jpeg = encode(plate_frame("X", (3840, 2160), (1800, 1200, 600, 150)), ".jpg")
    results = pipeline.recognize([good, b"not an image", jpeg, jpeg[:5000]])
    assert [type(r.error) for r in results] == [type(None), NotAnImage, type(None), CorruptImage]
    first, _, third, _ = results
    (plate,) = first.plates
    assert plate.box.as_xywh() == pytest.approx([200, 150, 160, 40], abs=8)
    # The constant reader reads "CA12345G"; syntax-aware correction makes the last slot a digit.
    assert (plate.reading.raw_text, plate.reading.text) == ("CA12345G", "CA123456")
    assert plate.reading.display_text == "CA 123-456"
    assert plate.reading.format is not None
    assert plate.reading.format.region_code == "ZA-WC"
    assert len(plate.reading.character_confidences) == len(plate.reading.text)
    assert all(len(a.text) > 0 and a.text != plate.reading.text for a in plate.reading.alternatives)
    assert len(plate.reading.alternatives) <= 3
    # The 4K JPEG was decoded at half size for detection; boxes still come back in full-resolution pixels.
    assert pipeline.decode(jpeg).reduction == 2
    assert pipeline.decode(encode(plate_frame("X", (1920, 1080), (0, 0, 9, 9)), ".jpg")).reduction == 1
    assert (third.width, third.height) == (3840, 2160)
    assert third.plates[0].box.as_xywh() == pytest.approx([1800, 1200, 600, 150], abs=32)
    for result in results:
        assert result.times.decode > 0
    assert first.times.detect > 0
    assert first.times.read > 0
    assert results[1].times.detect == 0
    assert not results[1].plates


def test_options(fake_manifest: Path) -> None:
    # The test detector's second, low-score row repeats the plate's box (both read alike): kept apart here.
    config = PipelineConfig(correct=False, max_alternatives=0, consolidate=False)
    pipeline = RecognitionPipeline.load(fake_manifest, config=config)
    frame = encode(plate_frame("X", (640, 360), (200, 150, 160, 40)))
    (result,) = pipeline.recognize([frame])
    assert result.plates[0].reading.text == "CA12345G"  # correction off
    assert result.plates[0].reading.alternatives == ()
    assert pipeline.recognize([frame], RecognitionOptions(min_reading_confidence=0.99))[0].plates == ()
    assert len(pipeline.recognize([frame], RecognitionOptions(min_detection_confidence=0.05))[0].plates) == 2
    assert (
        len(pipeline.recognize([frame], RecognitionOptions(min_detection_confidence=0.05, max_plates=1))[0].plates) == 1
    )
    assert pipeline.recognize([]) == []
    # By default the two boxes of one plate that read the same give one result, the surer detection's.
    one = RecognitionPipeline.load(fake_manifest, config=PipelineConfig(correct=False))
    (plate,) = one.recognize([frame], RecognitionOptions(min_detection_confidence=0.05))[0].plates
    assert plate.detection_confidence == result.plates[0].detection_confidence


def test_the_model_sets_reading_floor_applies_unless_the_request_sets_one(fake_manifest: Path) -> None:
    manifest = load_manifest(fake_manifest)
    frame = encode(plate_frame("X", (640, 360), (200, 150, 160, 40)))
    (plate,) = RecognitionPipeline(manifest).recognize([frame])[0].plates
    above = replace(manifest, reader=replace(manifest.reader, min_confidence=plate.reading.confidence * 1.01))
    strict = RecognitionPipeline(above)
    assert strict.recognize([frame])[0].plates == ()
    asked = RecognitionOptions(min_reading_confidence=plate.reading.confidence * 0.99)
    assert [p.reading.text for p in strict.recognize([frame], asked)[0].plates] == [plate.reading.text]
    configured = RecognitionPipeline(above, config=PipelineConfig(min_reading_confidence=1e-9))
    assert len(configured.recognize([frame])[0].plates) == 1


async def test_stages_run_in_executors(fake_manifest: Path) -> None:
    # How the service uses it: plain synchronous stages, called concurrently from threads.
    pipeline = RecognitionPipeline.load(fake_manifest)
    loop = asyncio.get_running_loop()
    frames = [encode(plate_frame("X", (640, 360), (100 + 10 * i, 150, 160, 40))) for i in range(8)]
    decoded = await asyncio.gather(*(loop.run_in_executor(None, pipeline.decode, f) for f in frames))
    found = await loop.run_in_executor(None, pipeline.detect, decoded)
    crops = [pipeline.crop(image, detections[0]) for image, detections in zip(decoded, found, strict=True)]
    raws = await loop.run_in_executor(None, pipeline.read, crops)
    readings = [pipeline.postprocess(raw) for raw in raws]
    assert [r.text for r in readings] == ["CA123456"] * 8
    assert [d[0].box.as_xywh()[0] for d in found] == pytest.approx([100 + 10 * i for i in range(8)], abs=8)


def test_a_plate_running_off_the_frame_is_read_as_part_of_a_plate(fake_manifest: Path) -> None:
    """A box reaching the left or right edge may hold only part of its plate: one more hidden run, so the reading
    is scored, voted and matched as partial. The top and bottom edges, a plate crop and the switch leave it whole."""
    pipeline = RecognitionPipeline.load(fake_manifest)
    boxes = {
        "inside": (200, 150, 160, 40),
        "left edge": (0, 150, 160, 40),
        "right edge": (480, 150, 160, 40),
        "top edge": (200, 0, 160, 40),
        "bottom edge": (200, 320, 160, 40),
    }
    frames = [encode(plate_frame("X", (640, 360), box)) for box in boxes.values()]
    hidden = [[p.reading.hidden_characters for p in r.plates] for r in pipeline.recognize(frames)]
    assert dict(zip(boxes, hidden, strict=True)) == {
        "inside": [0],
        "left edge": [1],
        "right edge": [1],
        "top edge": [0],
        "bottom edge": [0],
    }
    # Each image of a batch is judged by its own frame: the same box is at the edge of a 640-px frame only.
    wide = encode(plate_frame("X", (1280, 360), boxes["right edge"]))
    batch = pipeline.recognize([frames[2], wide])
    assert [[p.reading.hidden_characters for p in r.plates] for r in batch] == [[1], [0]]
    crop = encode(plate_frame("X", (160, 40), (0, 0, 160, 40)))
    ((plate,),) = (r.plates for r in pipeline.recognize([crop], plate_crops=[True]))
    assert plate.reading.hidden_characters == 0
    switched_off = RecognitionPipeline.load(fake_manifest, config=PipelineConfig(partial_at_frame_edge=False))
    assert [p.reading.hidden_characters for p in switched_off.recognize(frames[1:2])[0].plates] == [0]


@pytest.mark.skipif(not (SHIPPED / MANIFEST_NAME).is_file(), reason="shipped default models not present yet")
def test_the_frame_edge_mark_leaves_the_calibrated_confidence_alone() -> None:
    # Marked after scoring: a plate ending at the edge reads as surely as elsewhere (and may be whole), so it is
    # still reported, and ingest's tracker still gets the read for its pass; the mark says it may be partial.
    image = plate_frame("CA123456", (1920, 1080), (0, 700, 320, 80))
    image[700:780, :260] = image[700:780, 60:320].copy()  # a fifth of the plate beyond the left edge
    image[700:780, 260:320] = BACKGROUND
    frame = encode(image, ".jpg")
    (marked,) = RecognitionPipeline.load(SHIPPED).recognize([frame])[0].plates
    unmarked_pipeline = RecognitionPipeline.load(SHIPPED, config=PipelineConfig(partial_at_frame_edge=False))
    (unmarked,) = unmarked_pipeline.recognize([frame])[0].plates
    assert (marked.reading.hidden_characters, unmarked.reading.hidden_characters) == (1, 0)
    assert marked.reading.confidence == unmarked.reading.confidence
    assert marked.reading.text == unmarked.reading.text


def _raw(pipeline: RecognitionPipeline, text: str, p: float, other: RawReading | None = None) -> RawReading:
    """A reading of ``text`` with every character at probability ``p`` over the pipeline reader's alphabet."""
    alphabet = pipeline.reader.alphabet
    rows = np.full((len(text), len(alphabet)), (1 - p) / (len(alphabet) - 1), dtype=np.float32)
    for i, ch in enumerate(text):
        rows[i, alphabet.index(ch)] = p
    return RawReading(text, (p,) * len(text), p ** len(text), rows, rows, other)


def test_two_row_layout_wins_on_the_syntax(fake_manifest: Path) -> None:
    # A two-row motorcycle plate read as one line often yields its bottom row alone, and surely.
    pipeline = RecognitionPipeline.load(fake_manifest)
    two_rows = _raw(pipeline, "ND827848", 0.95)
    kept = pipeline.postprocess(_raw(pipeline, "827848", 0.99, other=two_rows))
    assert (kept.text, kept.raw_text) == ("ND827848", "ND827848")
    assert kept.format is not None
    assert kept.format.format_id == "za-kzn-standard"
    # Far less sure than the one-line reading, the other layout is not taken on the syntax alone.
    unsure = _raw(pipeline, "ND827848", 0.8)
    assert pipeline.postprocess(_raw(pipeline, "827848", 0.99, other=unsure)).text == "827848"
    # A one-line reading in a constraining format of its own stays.
    assert pipeline.postprocess(_raw(pipeline, "CA123456", 0.9, other=two_rows)).text == "CA123456"
    # Without correction the reader's own choice stands.
    plain = RecognitionPipeline.load(fake_manifest, config=PipelineConfig(correct=False))
    assert plain.postprocess(_raw(plain, "827848", 0.99, other=two_rows)).text == "827848"


def test_reported_plates_carry_the_alternatives_of_the_layout_kept(fake_manifest: Path) -> None:
    # plates() corrects every reading but looks for alternatives only for those it reports: the same as
    # postprocess(), from the row layout the reading was taken from.
    pipeline = RecognitionPipeline.load(fake_manifest)
    image = pipeline.decode(encode(plate_frame("X", (640, 360), (200, 150, 160, 40))))
    (detection,) = pipeline.detect([image])[0][:1]
    raws = [_raw(pipeline, "827848", 0.99, other=_raw(pipeline, "ND827848", 0.95)), _raw(pipeline, "CA12345G", 0.9)]
    for raw in raws:
        ((_, plate),) = pipeline.plates([detection], [raw], RecognitionOptions(max_alternatives=4), image=image)
        full = pipeline.postprocess(raw, max_alternatives=4)
        assert plate.reading == replace(full, confidence=plate.reading.confidence)
        assert plate.reading.alternatives
    # Below the reading floor nothing is reported, so nothing is left to look alternatives up for.
    assert pipeline.plates([detection], raws[:1], RecognitionOptions(min_reading_confidence=0.999), image=image) == []
    # A box read as nothing is not a plate even with no floor at all.
    empty = replace(raws[1], text="", confidence=0.0, character_confidences=())
    assert pipeline.plates([detection], [empty], RecognitionOptions(min_reading_confidence=0.0), image=image) == []


def test_ctc_reader_end_to_end(model_dir: Path, tmp_path: Path) -> None:
    # A paddleocr-ctc reader that reads CA12345G from a white line (testkit.build_ctc_reader), behind the detector.
    table = ctc_frames([PLATE_ALPHABET.index(ch) + 1 for ch in "CA12345G"], len(PLATE_ALPHABET) + 1)
    build_ctc_reader(tmp_path / "rec.onnx", table, characters="\n".join(PLATE_ALPHABET))
    (tmp_path / MANIFEST_NAME).write_text(
        "reader:\n  format: paddleocr-ctc\n  path: rec.onnx\n  min_width: 32\n  max_width: 256\n"
        f"detector:\n  format: yolov9-end2end\n  path: {model_dir / 'detector.onnx'}\n",
        encoding="utf-8",
    )
    pipeline = RecognitionPipeline.load(tmp_path)
    assert pipeline.min_crop_width == 192  # three quarters of the widest line
    frame = np.full((720, 1280, 3), BACKGROUND, dtype=np.uint8)
    frame[100:160, 100:340] = 255  # a blank white plate: the test reader reads it by its width
    for data in (encode(frame), encode(frame, ".jpg")):
        (plate,) = pipeline.recognize([data])[0].plates
        reading = plate.reading
        # Syntax-aware correction works on the CTC reader's rows as on fixed slots: the last character a digit.
        assert (reading.raw_text, reading.text, reading.display_text) == ("CA12345G", "CA123456", "CA 123-456")
        # The corrected character brings its own (here tiny) probability into the reading's confidence.
        assert 0 < reading.confidence < 0.9**7
        assert len(reading.character_confidences) == 8
        assert 0 < len(reading.alternatives) <= 3
        assert all(len(a.text) in (7, 8) and a.text != reading.text for a in reading.alternatives)
    (only,) = pipeline.read_plates([np.full((48, 96, 3), 255, dtype=np.uint8)])
    assert only.text == "CA12"


def test_a_reader_that_sees_hidden_characters_says_so(tmp_path: Path) -> None:
    """A reader whose dictionary has the hidden-character mark: its runs stay out of the text and reach the
    reading's ``hidden_characters``, for the scorer and the caller."""
    dictionary = PLATE_ALPHABET + HIDDEN
    classes: list[int | dict[int, float]] = [dictionary.index(ch) + 1 for ch in "CA1?456"]
    build_ctc_reader(tmp_path / "rec.onnx", ctc_frames(classes, len(dictionary) + 1), characters="\n".join(dictionary))
    (tmp_path / MANIFEST_NAME).write_text(
        "reader:\n  format: paddleocr-ctc\n  path: rec.onnx\n  min_width: 32\n  max_width: 256\n", encoding="utf-8"
    )
    pipeline = RecognitionPipeline.load(tmp_path)
    (reading,) = pipeline.read_plates([np.full((48, 160, 3), 255, dtype=np.uint8)])
    assert (reading.raw_text, reading.hidden_characters) == ("CA1456", 1)


def test_peer_reader_end_to_end(peer_manifest: Path) -> None:
    pipeline = RecognitionPipeline.load(peer_manifest)
    frames = [
        encode(plate_frame("CA123456", (1920, 1080), (800, 700, 320, 80)), ".jpg"),
        encode(plate_frame("BC45DFGP", (1280, 720), (100, 100, 256, 64))),
    ]
    texts = [[p.reading.text for p in r.plates] for r in pipeline.recognize(frames)]
    assert texts == [["CA123456"], ["BC45DFGP"]]
    assert pipeline.info.execution_provider == "CPUExecutionProvider"


@pytest.mark.skipif(not (SHIPPED / MANIFEST_NAME).is_file(), reason="shipped default models not present yet")
def test_shipped_models_load_and_run() -> None:
    pipeline = RecognitionPipeline.load(SHIPPED)
    assert pipeline.detector is not None
    frame = encode(plate_frame("CA123456", (1920, 1080), (800, 700, 320, 80)), ".jpg")
    (result,) = pipeline.recognize([frame])
    assert result.error is None
    assert (result.width, result.height) == (1920, 1080)
