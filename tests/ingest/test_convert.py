"""Recognition results in, plate events out: what a reading says about itself survives the tracker."""

from __future__ import annotations

from anpr.api.common.v1 import geometry_pb2, plate_pb2
from anpr.api.recognize.v1 import recognition_pb2
from anpr.ingest.convert import frame_reads, plate_event
from anpr.ingest.tracking.tracker import PassTracker, TrackerConfig


def _result(text: str, hidden: int) -> recognition_pb2.ImageResult:
    return recognition_pb2.ImageResult(
        image_id="f0",
        plates=[
            recognition_pb2.PlateDetection(
                box=geometry_pb2.BoundingBox(x=10, y=20, width=120, height=30),
                detection_confidence=1.0,
                reading=plate_pb2.PlateReading(text=text, confidence=0.9, hidden_characters=hidden),
            )
        ],
    )


def test_a_partial_reading_reaches_the_plate_event_marked_as_partial() -> None:
    # A plate-crop camera (no confidence floor applies to crops): a bar hid the end of the plate.
    reads = frame_reads("cam-1", "f0", 1_700_000_000.0, _result("CA1234", 1), None, "models 1")
    assert [(r.text, r.hidden_characters) for r in reads.reads] == [("CA1234", 1)]
    tracker = PassTracker(TrackerConfig(final_min_reads=1))
    tracker.observe(reads)
    [event] = tracker.flush()
    message = plate_event(event, None, 1_700_000_001.0)
    assert (message.reading.text, message.reading.hidden_characters) == ("CA1234", 1)


def test_a_whole_reading_has_no_hidden_characters() -> None:
    tracker = PassTracker(TrackerConfig(final_min_reads=1))
    tracker.observe(frame_reads("cam-1", "f0", 1_700_000_000.0, _result("CA123456", 0), None, "models 1"))
    [event] = tracker.flush()
    assert plate_event(event, None, 1_700_000_001.0).reading.hidden_characters == 0
