"""Plate events ingest emitted, in PostgreSQL: latest revision per pass, delivery state, retention.

Reading them back (GetPlateEvents) is a lookup of stored reads: it states a purpose and writes an audit row in the
same transaction (:mod:`anpr.ingest.audit`), every page included.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from anpr.api.common.v1 import plate_event_pb2, time_range_pb2
from anpr.api.ingest.v1 import event_pb2
from anpr.ingest import audit
from anpr.ingest.paging import decode_token, encode_token, page_size
from anpr.runtime.database import Pool
from anpr.runtime.errors import InvalidArgument
from anpr.runtime.purpose import check_purpose

_PLATE_FILTER = re.compile(r"[A-Za-z0-9 -]{1,32}")
_PLATE_SEPARATORS = str.maketrans("", "", " -")


def plate_filter(text: str) -> str:
    """The normalised plate of a GetPlateEvents filter ('' for none); wildcards and other characters are refused,
    never dropped, since dropping them turned `%` into "every plate"."""
    if not text:
        return ""
    if not _PLATE_FILTER.fullmatch(text):
        raise InvalidArgument("plate must be letters and digits only (spaces and dashes allowed); no wildcards")
    plate = text.translate(_PLATE_SEPARATORS).upper()
    if not 1 <= len(plate) <= 16:
        raise InvalidArgument("plate must have 1 to 16 letters and digits")
    return plate


class EventStore:
    """Reads and writes ``ingest.plate_events``."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def save(self, events: Sequence[plate_event_pb2.PlateEvent]) -> None:
        """Store event revisions; an older revision never overwrites a newer one."""
        rows = []
        for event in events:
            crop = event.best_crop.data or None
            stripped = plate_event_pb2.PlateEvent()
            stripped.CopyFrom(event)
            stripped.ClearField("best_crop")
            rows.append(
                (
                    uuid.UUID(event.event_id),
                    event.revision,
                    event.camera_id,
                    event.reading.text,
                    event.first_seen_time.ToDatetime(tzinfo=UTC),
                    event.last_seen_time.ToDatetime(tzinfo=UTC),
                    stripped.SerializeToString(),
                    crop,
                )
            )
        await self._pool.executemany(
            """INSERT INTO ingest.plate_events
                   (event_id, revision, camera_id, plate, first_seen, last_seen, event, best_crop)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (event_id) DO UPDATE SET
                   revision = EXCLUDED.revision, plate = EXCLUDED.plate, last_seen = EXCLUDED.last_seen,
                   event = EXCLUDED.event, best_crop = coalesce(EXCLUDED.best_crop, plate_events.best_crop),
                   delivered = false, deliver_time = NULL, delivery_attempts = 0, emit_time = now()
               WHERE plate_events.revision < EXCLUDED.revision""",
            rows,
        )

    async def mark_delivered(self, delivered: Sequence[tuple[str, int]]) -> None:
        """Record that these (event id, revision) pairs reached the hotlist service."""
        await self._pool.executemany(
            """UPDATE ingest.plate_events SET delivered = true, deliver_time = now(),
                   delivery_attempts = delivery_attempts + 1
               WHERE event_id = $1 AND revision = $2""",
            [(uuid.UUID(event_id), revision) for event_id, revision in delivered],
        )

    async def purge(self, older_than_seconds: float) -> int:
        """Delete events last seen before the retention horizon; returns how many."""
        status = await self._pool.execute(
            "DELETE FROM ingest.plate_events WHERE last_seen < now() - make_interval(secs => $1)", older_than_seconds
        )
        return int(status.split()[-1])

    async def audit_lookup(self, action: str, purpose: str, case_reference: str, details: dict[str, Any]) -> int:
        """Record a lookup of plate reads held elsewhere (the dead letters) before it happens; the row's id.

        The purpose is checked by the one shared rule; no row, no lookup: an unreachable database fails the call.
        """
        purpose, case_reference = check_purpose(purpose, case_reference)
        async with self._pool.acquire() as connection:
            return await audit.record(
                connection,
                action,
                target_type="dead_letters",
                purpose=purpose,
                case_reference=case_reference,
                details=details,
            )

    async def list(
        self,
        requested_size: int,
        token: str,
        camera_ids: Sequence[str],
        time_range: time_range_pb2.TimeRange | None,
        plate: str,
        states: Sequence[int],
        include_crops: bool,
        purpose: str,
        case_reference: str,
    ) -> tuple[list[event_pb2.PlateEventRecord], str, int]:
        """A page of events, newest first by last seen time, the next page token and the audit row's id."""
        purpose, case_reference = check_purpose(purpose, case_reference)
        plate = plate_filter(plate)
        start = (
            time_range.start_time.ToDatetime(tzinfo=UTC) if time_range and time_range.HasField("start_time") else None
        )
        end = time_range.end_time.ToDatetime(tzinfo=UTC) if time_range and time_range.HasField("end_time") else None
        wanted = set(states) - {event_pb2.DELIVERY_STATE_UNSPECIFIED}
        delivered_filter: bool | None = None
        if len(wanted) == 1:
            delivered_filter = event_pb2.DELIVERY_STATE_DELIVERED in wanted
        filters = [sorted(camera_ids), str(start), str(end), plate, sorted(wanted)]
        after = decode_token(token, filters)
        after_seen: datetime | None = None
        after_id: uuid.UUID | None = None
        if after is not None:
            try:
                after_seen, after_id = datetime.fromisoformat(after[0]), uuid.UUID(after[1])
            except (ValueError, TypeError, IndexError):
                raise InvalidArgument("page_token is malformed") from None
        size = page_size(requested_size)
        crop_column = "best_crop" if include_crops else "NULL::bytea AS best_crop"
        async with self._pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                f"""SELECT event_id, last_seen, event, {crop_column}, delivered, deliver_time, delivery_attempts
                    FROM ingest.plate_events
                    WHERE (cardinality($1::text[]) = 0 OR camera_id = ANY($1))
                      AND ($2::timestamptz IS NULL OR last_seen >= $2)
                      AND ($3::timestamptz IS NULL OR first_seen < $3)
                      AND ($4 = '' OR plate = $4)
                      AND ($5::boolean IS NULL OR delivered = $5)
                      AND ($6::timestamptz IS NULL OR (last_seen, event_id) < ($6, $7::uuid))
                    ORDER BY last_seen DESC, event_id DESC
                    LIMIT $8""",  # noqa: S608  (only a fixed column expression is interpolated)
                list(camera_ids),
                start,
                end,
                plate,
                delivered_filter,
                after_seen,
                after_id,
                size + 1,
            )
            audit_id = await audit.record(
                connection,
                audit.PLATE_EVENTS_READ,
                target_type="plate_events",
                purpose=purpose,
                case_reference=case_reference,
                details={
                    "filters": {
                        "camera_ids": sorted(camera_ids),
                        "start": None if start is None else start.isoformat(),
                        "end": None if end is None else end.isoformat(),
                        "plate": plate,
                        "delivery_states": sorted(wanted),
                        "include_plate_crops": include_crops,
                    },
                    "result_count": min(len(rows), size),
                    "page_token": bool(token),
                },
            )
        records = []
        for row in rows[:size]:
            event = plate_event_pb2.PlateEvent.FromString(row["event"])
            if row["best_crop"] is not None:
                event.best_crop.data = row["best_crop"]
            record = event_pb2.PlateEventRecord(
                event=event,
                delivery_state=event_pb2.DELIVERY_STATE_DELIVERED
                if row["delivered"]
                else event_pb2.DELIVERY_STATE_PENDING,
                delivery_attempts=row["delivery_attempts"],
            )
            if row["deliver_time"] is not None:
                record.deliver_time.FromDatetime(row["deliver_time"])
            records.append(record)
        next_token = ""
        if len(rows) > size:
            last = rows[size - 1]
            next_token = encode_token([last["last_seen"].isoformat(), str(last["event_id"])], filters)
        return records, next_token, audit_id
