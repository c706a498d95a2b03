"""Conversions between protobuf messages and the tracker's plain values."""

from __future__ import annotations

import re

from google.protobuf import timestamp_pb2

from anpr.api.common.v1 import geo_pb2, geometry_pb2, image_pb2, plate_event_pb2, plate_pb2
from anpr.api.ingest.v1 import camera_pb2, event_pb2
from anpr.api.recognize.v1 import recognition_pb2
from anpr.ingest.dead_letters import DeadLetter
from anpr.ingest.tracking.model import Box, FrameReads, Gps, PassEvent, PlateRead

# Frames sampled from an uploaded recording are named by the recording and their offset in it; events carry both.
RECORDING_FRAME_PREFIX = "rec:"
_RECORDING_FRAME_ID = re.compile(r"rec:([A-Za-z0-9._-]{1,64}):([0-9]{1,12})")


def recording_frame_id(recording_id: str, offset_ms: int) -> str:
    """The frame id of the frame at ``offset_ms`` of a recording."""
    return f"{RECORDING_FRAME_PREFIX}{recording_id}:{offset_ms}"


def recording_position(frame_id: str) -> tuple[str, int] | None:
    """(recording id, offset in ms) of a frame sampled from a recording, None for any other frame."""
    match = _RECORDING_FRAME_ID.fullmatch(frame_id)
    return (match.group(1), int(match.group(2))) if match else None


def timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    """A Timestamp from seconds since the epoch."""
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(round(seconds * 1e9))
    return stamp


def gps_from_proto(fix: geo_pb2.GpsFix) -> Gps:
    """Plain GPS fix of a proto one."""
    return Gps(
        latitude=fix.position.latitude,
        longitude=fix.position.longitude,
        accuracy_meters=fix.accuracy_meters if fix.HasField("accuracy_meters") else None,
        heading_degrees=fix.heading_degrees if fix.HasField("heading_degrees") else None,
        speed_meters_per_second=fix.speed_meters_per_second if fix.HasField("speed_meters_per_second") else None,
    )


def gps_to_proto(gps: Gps) -> geo_pb2.GpsFix:
    """Proto GPS fix of a plain one."""
    fix = geo_pb2.GpsFix(position=geo_pb2.GeoPoint(latitude=gps.latitude, longitude=gps.longitude))
    if gps.accuracy_meters is not None:
        fix.accuracy_meters = gps.accuracy_meters
    if gps.heading_degrees is not None:
        fix.heading_degrees = gps.heading_degrees
    if gps.speed_meters_per_second is not None:
        fix.speed_meters_per_second = gps.speed_meters_per_second
    return fix


def frame_reads(
    camera_id: str,
    frame_id: str,
    capture_time: float,
    result: recognition_pb2.ImageResult,
    gps: Gps | None,
    model_version: str,
    plate_crops: bool = False,
) -> FrameReads:
    """The tracker's view of one recognised frame (``plate_crops``: the camera sends plate crops)."""
    reads = []
    for plate in result.plates:
        box = plate.box
        reading = plate.reading
        reads.append(
            PlateRead(
                text=reading.text,
                confidence=reading.confidence,
                box=Box(box.x, box.y, box.width, box.height),
                character_confidences=tuple(reading.character_confidences),
                alternatives=tuple((a.text, a.confidence) for a in reading.alternatives),
                crop=plate.crop.data or None,
                hidden_characters=reading.hidden_characters,
            )
        )
    return FrameReads(camera_id, frame_id, capture_time, tuple(reads), gps, model_version, plate_crops)


def plate_event(event: PassEvent, camera: camera_pb2.Camera | None, emit_time: float) -> plate_event_pb2.PlateEvent:
    """The PlateEvent message of a pass event, placed on the map by the event's GPS fix or the camera."""
    message = plate_event_pb2.PlateEvent(
        event_id=event.event_id,
        revision=event.revision,
        stage=event.stage.value,  # type: ignore[arg-type]
        camera_id=event.camera_id,
        reading=plate_pb2.PlateReading(
            text=event.text,
            raw_text=event.raw_text or event.text,
            confidence=event.confidence,
            character_confidences=event.character_confidences,
            alternatives=[plate_pb2.AlternativeReading(text=t, confidence=c) for t, c in event.alternatives],
            hidden_characters=event.hidden_characters,
        ),
        best_crop_box=geometry_pb2.BoundingBox(
            x=event.best_box.x, y=event.best_box.y, width=event.best_box.width, height=event.best_box.height
        ),
        best_frame_id=event.best_frame_id,
        first_seen_time=timestamp(event.first_seen),
        last_seen_time=timestamp(event.last_seen),
        frame_count=event.frame_count,
        travel_direction=event.direction.value,  # type: ignore[arg-type]
        emit_time=timestamp(emit_time),
        model_version=event.model_version,
    )
    place = recording_position(event.best_frame_id)
    if place is not None:
        message.recording.recording_id, message.recording.offset_ms = place
    if event.best_crop:
        message.best_crop.CopyFrom(image_pb2.EncodedImage(data=event.best_crop, encoding=image_pb2.IMAGE_ENCODING_JPEG))
    if event.gps is not None:
        message.location.CopyFrom(gps_to_proto(event.gps))
    elif camera is not None and camera.WhichOneof("placement") == "location":
        message.location.position.CopyFrom(camera.location)
    if camera is not None and camera.HasField("view_direction_degrees"):
        if camera.WhichOneof("placement") == "location":
            message.view_direction_degrees = camera.view_direction_degrees
        elif event.gps is not None and event.gps.heading_degrees is not None:
            # Moving cameras state their view relative to the direction of travel.
            message.view_direction_degrees = (event.gps.heading_degrees + camera.view_direction_degrees) % 360
    return message


def dead_letter_message(letter: DeadLetter, include_crop: bool) -> event_pb2.DeadLetter:
    """The DeadLetter message of a stored dead letter, with the event's crop only when asked for."""
    event = plate_event_pb2.PlateEvent.FromString(letter.payload)
    if not include_crop:
        event.ClearField("best_crop")
    return event_pb2.DeadLetter(
        dead_letter_id=letter.dead_letter_id, event=event, reason=letter.reason, dead_time=timestamp(letter.dead_at)
    )
