"""The plate event contract: what a ``anpr.common.v1.PlateEvent`` must satisfy, in one place.

Ingest checks every event with these rules before it emits it, and the hotlist service checks every event it
receives with the same rules, so ingest never emits an event that hotlist would refuse (measured before this
module existed: a quarter of all events were refused for a one-character reading or a bad GPS fix).

The rules come in two kinds:

* **Repairs** (:func:`repair`): optional parts that are wrong are dropped, never the event. An invalid GPS fix, a
  bad alternative reading, an out-of-range view direction or an oversized crop would otherwise cost the reading
  itself, and with it a hotlist alert. Each call says which fields it dropped so that both sides can count them.
* **Violations** (:func:`violations`): what makes an event unusable (no identity, no valid plate text, an
  impossible confidence or time order). Ingest does not emit such an event; hotlist refuses that event alone,
  never the rest of its batch.

Messages name the field, never the plate text (plate text is personal information).
"""

from __future__ import annotations

import math
import re

from anpr.api.common.v1 import plate_event_pb2
from anpr.runtime.errors import InvalidArgument

PLATE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
MIN_PLATE_LENGTH = 2
MAX_PLATE_LENGTH = 10
MAX_REVISION = 2**31 - 1  # stored as a PostgreSQL integer; a pass never has that many revisions
MAX_ALTERNATIVES = 20
MAX_ALTERNATIVE_LENGTH = 32
# The hotlist service's default limit on stored crops; a larger crop is dropped, not the event.
MAX_CROP_BYTES = 512 * 1024

# fullmatch everywhere: "$" would let a trailing newline through.
_PLATE = re.compile(r"[A-Z0-9]+")
_EVENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_CAMERA_ID = re.compile(r"[A-Za-z0-9._:/-]{1,128}")


class InvalidPlateEvent(InvalidArgument):
    """A plate event that breaks the contract; the message names the field, never the plate."""


def is_plate_text(text: str) -> bool:
    """Whether ``text`` is normalised plate text: A-Z and 0-9 only, 2-10 characters."""
    return MIN_PLATE_LENGTH <= len(text) <= MAX_PLATE_LENGTH and bool(_PLATE.fullmatch(text))


def is_confidence(value: float) -> bool:
    """Whether ``value`` is a confidence in [0, 1] (NaN is not)."""
    return 0.0 <= value <= 1.0


def is_position(latitude: float, longitude: float) -> bool:
    """Whether the point is a WGS 84 position: latitude in [-90, 90], longitude in [-180, 180], both finite."""
    return -90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0


def _is_alternative(text: str, confidence: float) -> bool:
    return 0 < len(text) <= MAX_ALTERNATIVE_LENGTH and bool(_PLATE.fullmatch(text)) and is_confidence(confidence)


def _is_bearing(degrees: float) -> bool:
    return 0.0 <= degrees < 360.0


def repair(event: plate_event_pb2.PlateEvent, *, max_crop_bytes: int = MAX_CROP_BYTES) -> list[str]:
    """Drop the optional parts of ``event`` (in place) that break the contract; returns the dropped fields' names.

    The names form a small fixed set (``location``, ``location.heading_degrees``, ``reading.alternatives``, ...),
    fit for a metric label.
    """
    dropped: list[str] = []
    if event.HasField("location"):
        dropped.extend(_repair_location(event))
    if event.HasField("view_direction_degrees") and not _is_bearing(event.view_direction_degrees):
        event.ClearField("view_direction_degrees")
        dropped.append("view_direction_degrees")
    reading = event.reading
    kept = [a for a in reading.alternatives if _is_alternative(a.text, a.confidence)][:MAX_ALTERNATIVES]
    if len(kept) != len(reading.alternatives):
        del reading.alternatives[:]
        reading.alternatives.extend(kept)
        dropped.append("reading.alternatives")
    if len(reading.character_confidences) not in (0, len(reading.text)) or not all(
        is_confidence(c) for c in reading.character_confidences
    ):
        reading.ClearField("character_confidences")
        dropped.append("reading.character_confidences")
    if reading.raw_text and not (
        len(reading.raw_text) <= MAX_ALTERNATIVE_LENGTH and _PLATE.fullmatch(reading.raw_text)
    ):
        reading.ClearField("raw_text")
        dropped.append("reading.raw_text")
    if len(event.best_crop.data) > max_crop_bytes:
        event.ClearField("best_crop")
        dropped.append("best_crop")
    return dropped


def _repair_location(event: plate_event_pb2.PlateEvent) -> list[str]:
    fix = event.location
    position = fix.position
    if not fix.HasField("position") or not is_position(position.latitude, position.longitude):
        # Without a valid position the rest of the fix says nothing about where the read happened.
        event.ClearField("location")
        return ["location"]
    dropped = []
    if fix.HasField("heading_degrees") and not _is_bearing(fix.heading_degrees):
        fix.ClearField("heading_degrees")
        dropped.append("location.heading_degrees")
    if fix.HasField("speed_meters_per_second") and not fix.speed_meters_per_second >= 0.0:
        fix.ClearField("speed_meters_per_second")
        dropped.append("location.speed_meters_per_second")
    if fix.HasField("accuracy_meters") and not fix.accuracy_meters >= 0.0:
        fix.ClearField("accuracy_meters")
        dropped.append("location.accuracy_meters")
    if fix.HasField("altitude_meters") and not math.isfinite(fix.altitude_meters):
        fix.ClearField("altitude_meters")
        dropped.append("location.altitude_meters")
    return dropped


def violations(event: plate_event_pb2.PlateEvent, *, require_text: bool = False) -> list[str]:
    """What makes ``event`` unusable, as messages naming the field; empty when it satisfies the contract.

    Empty plate text (a plate detected but not read) is allowed unless ``require_text``: ingest requires text
    (a pass without a readable plate is not an event), while other reporters may send unread detections.
    Repairable faults are not violations: call :func:`repair` first.
    """
    found: list[str] = []
    if not _EVENT_ID.fullmatch(event.event_id):
        found.append("event_id must be 1-128 characters of A-Z a-z 0-9 . _ : -")
    if not 1 <= event.revision <= MAX_REVISION:
        found.append(f"revision must be 1-{MAX_REVISION}")
    if not _CAMERA_ID.fullmatch(event.camera_id):
        found.append("camera_id must be 1-128 characters of A-Z a-z 0-9 . _ : / -")
    text = event.reading.text
    if (text or require_text) and not is_plate_text(text):
        found.append(
            f"reading.text must be normalised plate text (A-Z, 0-9, {MIN_PLATE_LENGTH}-{MAX_PLATE_LENGTH} "
            "characters)" + ("" if require_text else " or empty")
        )
    if not is_confidence(event.reading.confidence):
        found.append("reading.confidence must be in [0, 1]")
    if (
        event.HasField("first_seen_time")
        and event.HasField("last_seen_time")
        and event.last_seen_time.ToNanoseconds() < event.first_seen_time.ToNanoseconds()
    ):
        found.append("last_seen_time must not be before first_seen_time")
    return found


def check(event: plate_event_pb2.PlateEvent, *, require_text: bool = False) -> None:
    """:class:`InvalidPlateEvent` with the first violation of ``event``, if any."""
    found = violations(event, require_text=require_text)
    if found:
        raise InvalidPlateEvent(found[0])
