"""Translation between protobuf messages and the hotlist domain records (no logic beyond field mapping)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from anpr.api.common.v1 import geo_pb2, plate_event_pb2
from anpr.api.hotlist.v1 import (
    alert_pb2,
    audit_pb2,
    hotlist_pb2,
    import_pb2,
    match_pb2,
    read_pb2,
)
from anpr.hotlist.alerts import Alert
from anpr.hotlist.audit import AuditRecord
from anpr.hotlist.hits import Hit
from anpr.hotlist.importing import ImportResult
from anpr.hotlist.matching import RawHit
from anpr.hotlist.model import Entry, EntryFields, Hotlist, HotlistFields
from anpr.hotlist.reads import ReadEvent, ReadOutcome
from anpr.hotlist.search import Area, Circle, FoundRead, Polygon, Rectangle

# Proto field names of Hotlist -> domain field names (the update mask speaks proto).
HOTLIST_MASK_FIELDS = {
    "display_name": "display_name",
    "description": "description",
    "source": "source",
    "priority": "priority",
    "default_action": "default_action",
    "default_instructions": "default_instructions",
    "active": "active",
    "strictness": "strictness",
    "min_match_score": "min_match_score",
    "alert_suppression_window": "suppression_seconds",
    "default_entry_ttl": "default_ttl_seconds",
}


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A Timestamp, or None for None."""
    if value is None:
        return None
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value)
    return message


def when(message: timestamp_pb2.Timestamp, present: bool) -> datetime | None:
    """An aware datetime from a Timestamp field, or None when unset."""
    return message.ToDatetime(tzinfo=UTC) if present else None


def _seconds(message: duration_pb2.Duration, present: bool) -> float | None:
    return message.ToTimedelta().total_seconds() if present else None


def _duration(seconds: float | None) -> duration_pb2.Duration | None:
    if seconds is None:
        return None
    message = duration_pb2.Duration()
    message.FromNanoseconds(int(seconds * 1e9))
    return message


def hotlist_fields(message: hotlist_pb2.Hotlist) -> HotlistFields:
    """The settable fields of a Hotlist message."""
    return HotlistFields(
        display_name=message.display_name,
        description=message.description,
        source=message.source,
        priority=message.priority,
        default_action=message.default_action,
        default_instructions=message.default_instructions,
        active=message.active,
        strictness=message.strictness,
        min_match_score=message.min_match_score,
        suppression_seconds=_seconds(message.alert_suppression_window, message.HasField("alert_suppression_window")),
        default_ttl_seconds=_seconds(message.default_entry_ttl, message.HasField("default_entry_ttl")),
    )


def hotlist_changes(message: hotlist_pb2.Hotlist, paths: list[str]) -> dict[str, Any]:
    """The fields an update mask names, by domain name (unknown paths keep their proto name to be refused)."""
    values = hotlist_fields(message)
    return {HOTLIST_MASK_FIELDS.get(p, p): getattr(values, HOTLIST_MASK_FIELDS.get(p, ""), None) for p in paths}


def hotlist_message(hotlist: Hotlist) -> hotlist_pb2.Hotlist:
    """The Hotlist message of a stored list."""
    fields = hotlist.fields
    return hotlist_pb2.Hotlist(
        name=hotlist.name,
        display_name=fields.display_name,
        description=fields.description,
        source=fields.source,
        priority=fields.priority,
        default_action=fields.default_action,  # type: ignore[arg-type]
        default_instructions=fields.default_instructions,
        active=fields.active,
        strictness=fields.strictness,  # type: ignore[arg-type]
        min_match_score=fields.min_match_score,
        alert_suppression_window=_duration(fields.suppression_seconds),
        default_entry_ttl=_duration(fields.default_ttl_seconds),
        entry_count=hotlist.entry_count,
        create_time=timestamp(hotlist.create_time),
        created_by=hotlist.created_by,
        update_time=timestamp(hotlist.update_time),
        updated_by=hotlist.updated_by,
    )


def entry_fields(message: hotlist_pb2.HotlistEntry, target: str, is_pattern: bool) -> EntryFields:
    """Domain fields of an entry message whose target was already normalised."""
    return EntryFields(
        target=target,
        is_pattern=is_pattern,
        reason=message.reason,
        make=message.vehicle.make,
        model=message.vehicle.model,
        colour=message.vehicle.colour,
        notes=message.vehicle.notes,
        external_reference=message.external_reference,
        action=message.action,
        instructions=message.instructions,
        expire_time=when(message.expire_time, message.HasField("expire_time")),
    )


def entry_message(entry: Entry) -> hotlist_pb2.HotlistEntry:
    """The HotlistEntry message of a stored entry."""
    fields = entry.fields
    message = hotlist_pb2.HotlistEntry(
        entry_id=str(entry.entry_id),
        hotlist_name=entry.hotlist_name,
        reason=fields.reason,
        vehicle=hotlist_pb2.VehicleDescription(
            make=fields.make, model=fields.model, colour=fields.colour, notes=fields.notes
        ),
        external_reference=fields.external_reference,
        action=fields.action,  # type: ignore[arg-type]
        instructions=fields.instructions,
        expire_time=timestamp(fields.expire_time),
        added_by=entry.added_by,
        add_time=timestamp(entry.add_time),
        updated_by=entry.updated_by,
        update_time=timestamp(entry.update_time),
    )
    if fields.is_pattern:
        message.pattern = fields.target
    else:
        message.plate = fields.target
    return message


def raw_hit_message(raw: RawHit) -> match_pb2.Hit:
    """The index part of a Hit message."""
    return match_pb2.Hit(
        hotlist_name=raw.hotlist_name,
        priority=raw.priority,
        kind=int(raw.kind),  # type: ignore[arg-type]
        matched_text=raw.matched_text,
        alternative_rank=raw.alternative_rank,
        edit_distance=raw.edit_distance,
        confusion_count=raw.confusion_count,
        score=raw.score,
        meets_strictness=raw.meets_strictness,
    )


def hit_message(hit: Hit) -> match_pb2.Hit:
    """A Hit message with its entry snapshot and effective action."""
    message = raw_hit_message(hit.raw)
    message.entry.CopyFrom(entry_message(hit.entry))
    message.action = hit.action  # type: ignore[assignment]
    message.instructions = hit.instructions
    return message


def read_event(message: plate_event_pb2.PlateEvent) -> ReadEvent:
    """Domain view of a reported PlateEvent (the stored payload leaves the crop out; it is stored apart)."""
    reading = message.reading
    seen_last = message.last_seen_time if message.HasField("last_seen_time") else message.first_seen_time
    if not message.HasField("last_seen_time") and not message.HasField("first_seen_time"):
        seen_last = message.emit_time if message.HasField("emit_time") else timestamp(datetime.now(UTC))  # type: ignore[assignment]
    last_seen = seen_last.ToDatetime(tzinfo=UTC)
    first_seen = message.first_seen_time.ToDatetime(tzinfo=UTC) if message.HasField("first_seen_time") else last_seen
    stripped = plate_event_pb2.PlateEvent()
    stripped.CopyFrom(message)
    stripped.ClearField("best_crop")
    position = message.location.position if message.HasField("location") else None
    return ReadEvent(
        event_id=message.event_id,
        revision=message.revision,
        camera_id=message.camera_id,
        plate=reading.text,
        confidence=reading.confidence,
        alternatives=tuple((alt.text, alt.confidence) for alt in reading.alternatives),
        first_seen=first_seen,
        last_seen=last_seen,
        latitude=position.latitude if position is not None else None,
        longitude=position.longitude if position is not None else None,
        payload=stripped.SerializeToString(),
        crop=message.best_crop.data if message.HasField("best_crop") and message.best_crop.data else None,
        hidden_characters=reading.hidden_characters,
    )


def plate_event(payload: bytes, crop: bytes | None, include_crop: bool) -> plate_event_pb2.PlateEvent:
    """The stored event, with its crop when asked for."""
    event = plate_event_pb2.PlateEvent.FromString(payload)
    if include_crop and crop is not None:
        event.best_crop.data = crop
    return event


def alert_message(alert: Alert, include_crop: bool = True) -> alert_pb2.Alert:
    """The Alert message of a stored alert."""
    message = alert_pb2.Alert(
        alert_id=str(alert.alert_id),
        hit=hit_message(alert.hit),
        event=plate_event(alert.event, alert.crop, include_crop),
        raise_time=timestamp(alert.raise_time),
        state=int(alert.state),  # type: ignore[arg-type]
        suppressed_count=alert.suppressed_count,
        last_suppressed_time=timestamp(alert.last_suppressed_time),
    )
    if alert.acknowledge_time is not None:
        message.acknowledgement.CopyFrom(
            alert_pb2.Acknowledgement(
                outcome=alert.outcome,  # type: ignore[arg-type]
                rejection_reason=alert.rejection_reason,  # type: ignore[arg-type]
                note=alert.note,
                acknowledged_by=alert.acknowledged_by,
                acknowledge_time=timestamp(alert.acknowledge_time),
            )
        )
    return message


_READ_STATUS = {"STORED": 1, "UPDATED": 2, "DUPLICATE": 3, "REJECTED": 4}


def read_result(outcome: ReadOutcome) -> read_pb2.ReadResult:
    """The ReadResult of one reported event."""
    return read_pb2.ReadResult(
        event_id=outcome.event_id,
        revision=outcome.revision,
        status=_READ_STATUS[outcome.status],  # type: ignore[arg-type]
        alerts=[alert_message(alert) for alert in outcome.alerts],
        suppressed_hit_count=outcome.suppressed,
        rejection_message=outcome.rejection,
    )


def import_response_fields(result: ImportResult) -> dict[str, Any]:
    """Keyword arguments of ImportEntriesResponse."""
    return {
        "received_count": result.received,
        "created_count": result.created,
        "updated_count": result.updated,
        "unchanged_count": result.unchanged,
        "deleted_count": result.deleted,
        "rejected_count": result.rejected,
        "errors": [
            import_pb2.ImportRowError(
                row_number=error.row_number,
                value=error.value,
                reason=import_pb2.ImportErrorReason.Value(f"IMPORT_ERROR_REASON_{error.reason}"),
                message=error.message,
            )
            for error in result.errors
        ],
        "errors_truncated": result.errors_truncated,
        "applied": result.applied,
    }


def area(message: geo_pb2.GeoArea) -> Area | None:
    """The domain area of a GeoArea (None when no shape is set)."""
    shape = message.WhichOneof("shape")
    if shape == "circle":
        c = message.circle
        return Circle(c.center.latitude, c.center.longitude, c.radius_meters)
    if shape == "rectangle":
        r = message.rectangle
        return Rectangle(r.south_west.latitude, r.south_west.longitude, r.north_east.latitude, r.north_east.longitude)
    if shape == "polygon":
        vertices = message.polygon.vertices
        return Polygon(tuple(v.latitude for v in vertices), tuple(v.longitude for v in vertices))
    return None


def plate_read(found: FoundRead, include_crop: bool) -> read_pb2.PlateRead:
    """The PlateRead message of a search result."""
    return read_pb2.PlateRead(
        event=plate_event(found.event, found.crop, include_crop),
        store_time=timestamp(found.store_time),
        alert_ids=[str(a) for a in found.alert_ids],
        purge_time=timestamp(found.purge_time),
    )


def audit_message(record: AuditRecord) -> audit_pb2.AuditRecord:
    """The AuditRecord message of a trail row."""
    details = struct_pb2.Struct()
    details.update(record.details)
    return audit_pb2.AuditRecord(
        audit_id=str(record.audit_id),
        record_time=timestamp(record.record_time),
        actor=record.actor,
        actor_roles=record.actor_roles,
        action=audit_pb2.AuditAction.Value(f"AUDIT_ACTION_{record.action}"),
        target_type=record.target_type,
        target_id=record.target_id,
        purpose=record.purpose,
        case_reference=record.case_reference,
        request_id=record.request_id,
        details=details,
    )
