"""The plate event contract that ingest (before emitting) and hotlist (on receipt) both apply."""

from __future__ import annotations

import math

import pytest

from anpr.api.common.v1 import geo_pb2, image_pb2, plate_event_pb2, plate_pb2
from anpr.domain import plate_events
from anpr.domain.plate_events import InvalidPlateEvent, check, is_plate_text, repair, violations


def event(text: str = "CA123456", **fields: object) -> plate_event_pb2.PlateEvent:
    message = plate_event_pb2.PlateEvent(
        event_id="6f1d4c1e-3a55-5b8e-9a0f-2f0c8e3b7a11",
        revision=1,
        camera_id="gate-1",
        reading=plate_pb2.PlateReading(text=text, confidence=0.9),
        **fields,  # type: ignore[arg-type]
    )
    message.first_seen_time.FromSeconds(1000)
    message.last_seen_time.FromSeconds(1001)
    return message


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("CA123456", True),
        ("AB", True),
        ("A", False),
        ("", False),
        ("ABCDEFGHIJ", True),
        ("ABCDEFGHIJK", False),
        ("ca123", False),
        ("CA 123", False),
        ("CA-123", False),
        ("CA123\n", False),
        ("ÄB12", False),
    ],
)
def test_plate_text_is_two_to_ten_letters_and_digits(text: str, valid: bool) -> None:
    assert is_plate_text(text) is valid
    assert plate_events.MIN_PLATE_LENGTH == 2
    assert plate_events.MAX_PLATE_LENGTH == 10


def test_a_valid_event_has_no_violations_and_nothing_to_repair() -> None:
    message = event(location=geo_pb2.GpsFix(position=geo_pb2.GeoPoint(latitude=-33.9, longitude=18.4)))
    assert repair(message) == []
    assert violations(message) == []
    check(message, require_text=True)


def test_one_character_reading_is_not_an_event() -> None:
    assert violations(event("7"))
    with pytest.raises(InvalidPlateEvent, match=r"reading\.text"):
        check(event("7"))
    # An unread detection may be reported by others, but ingest requires a plate.
    assert violations(event("")) == []
    assert violations(event(""), require_text=True)


@pytest.mark.parametrize(
    ("field", "value", "name"),
    [
        ("event_id", "", "event_id"),
        ("event_id", "x" * 129, "event_id"),
        ("event_id", "a b", "event_id"),
        ("camera_id", "", "camera_id"),
        ("camera_id", "cam\n", "camera_id"),
        ("revision", 0, "revision"),
        ("revision", 2**32 - 1, "revision"),  # fuzzing: beyond the stored integer, once INTERNAL
    ],
)
def test_identity_violations_name_the_field(field: str, value: object, name: str) -> None:
    message = event()
    setattr(message, field, value)
    (found,) = violations(message)
    assert found.startswith(name)


@pytest.mark.parametrize("confidence", [-0.1, 1.5, math.nan])
def test_confidence_must_be_a_probability(confidence: float) -> None:
    message = event()
    message.reading.confidence = confidence
    assert violations(message) == ["reading.confidence must be in [0, 1]"]


def test_time_must_not_run_backwards() -> None:
    message = event()
    message.last_seen_time.FromSeconds(999)
    assert violations(message) == ["last_seen_time must not be before first_seen_time"]


@pytest.mark.parametrize(("latitude", "longitude"), [(123.0, 18.0), (-91.0, 0.0), (0.0, 181.0), (math.nan, 0.0)])
def test_an_invalid_gps_fix_is_dropped_not_the_event(latitude: float, longitude: float) -> None:
    message = event(
        location=geo_pb2.GpsFix(position=geo_pb2.GeoPoint(latitude=latitude, longitude=longitude), heading_degrees=90)
    )
    assert repair(message) == ["location"]
    assert not message.HasField("location")
    assert violations(message) == []


def test_bad_parts_of_a_valid_fix_are_dropped_alone() -> None:
    fix = geo_pb2.GpsFix(
        position=geo_pb2.GeoPoint(latitude=10, longitude=10),
        heading_degrees=360.0,
        speed_meters_per_second=-1.0,
        accuracy_meters=5.0,
    )
    message = event(location=fix, view_direction_degrees=-5.0)
    assert repair(message) == ["location.heading_degrees", "location.speed_meters_per_second", "view_direction_degrees"]
    assert message.location.position.latitude == 10
    assert message.location.accuracy_meters == 5.0
    assert not message.HasField("view_direction_degrees")


def test_bad_alternatives_and_oversized_crops_are_dropped() -> None:
    message = event(best_crop=image_pb2.EncodedImage(data=b"x" * 101))
    good = [plate_pb2.AlternativeReading(text=f"CA{i}", confidence=0.1) for i in range(25)]
    bad = [
        plate_pb2.AlternativeReading(text="", confidence=0.1),
        plate_pb2.AlternativeReading(text="ca1", confidence=2),
    ]
    message.reading.alternatives.extend(bad + good)
    message.reading.character_confidences.extend([0.5, 0.5])  # not one per character
    assert repair(message, max_crop_bytes=100) == [
        "reading.alternatives",
        "reading.character_confidences",
        "best_crop",
    ]
    assert [a.text for a in message.reading.alternatives] == [f"CA{i}" for i in range(plate_events.MAX_ALTERNATIVES)]
    assert not message.HasField("best_crop")
    assert violations(message) == []
