"""ReportReads: store plate events idempotently, match them, raise alerts, all in one transaction per batch.

A batch is validated completely before anything is written, and written in one transaction, so an invalid or
failing batch stores nothing. Events with the same id are applied in revision order; a revision at or below the
stored one is a harmless duplicate (no matching, no alert), which makes the ingest service's retries safe.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from anpr.hotlist import metrics
from anpr.hotlist.alerts import Alert, Change, alerts_by_id, append_changes, raise_or_suppress
from anpr.hotlist.db import Connection, Pool
from anpr.hotlist.hits import Matcher, PlateText, with_details
from anpr.hotlist.plates import Folding, is_normalised_plate
from anpr.runtime.errors import Aborted, InvalidArgument

_EVENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CAMERA_ID = re.compile(r"^[A-Za-z0-9._:/-]{1,128}$")
MAX_ALTERNATIVES = 20


@dataclass(frozen=True)
class ReadEvent:
    """A plate event as the hotlist service stores it; ``payload`` is the serialised event without its crop."""

    event_id: str
    revision: int
    camera_id: str
    plate: str
    confidence: float
    alternatives: tuple[tuple[str, float], ...]
    first_seen: datetime
    last_seen: datetime
    latitude: float | None
    longitude: float | None
    payload: bytes
    crop: bytes | None


@dataclass
class ReadOutcome:
    """What happened to one reported event."""

    event_id: str
    revision: int
    status: str = "STORED"
    alerts: list[Alert] = field(default_factory=list)
    suppressed: int = 0


def check_event(event: ReadEvent, max_crop_bytes: int) -> None:
    """InvalidArgument for an event that cannot be stored (messages name the field, never the plate)."""
    if not _EVENT_ID.match(event.event_id):
        raise InvalidArgument("event_id must be 1-128 characters of A-Z a-z 0-9 . _ : -")
    if event.revision < 1:
        raise InvalidArgument("revision must be at least 1")
    if not _CAMERA_ID.match(event.camera_id):
        raise InvalidArgument("camera_id must be 1-128 characters of A-Z a-z 0-9 . _ : / -")
    if event.plate and not is_normalised_plate(event.plate):
        raise InvalidArgument("reading.text must be normalised plate text (A-Z, 0-9, 2-10 characters) or empty")
    if not 0.0 <= event.confidence <= 1.0:
        raise InvalidArgument("reading.confidence must be in [0, 1]")
    if len(event.alternatives) > MAX_ALTERNATIVES:
        raise InvalidArgument(f"at most {MAX_ALTERNATIVES} alternative readings")
    for text, confidence in event.alternatives:
        if len(text) > 32 or not text.isascii() or not text.isalnum() or not 0.0 <= confidence <= 1.0:
            raise InvalidArgument("alternative readings must be normalised text with a confidence in [0, 1]")
    if event.crop is not None and len(event.crop) > max_crop_bytes:
        raise InvalidArgument(f"best_crop must be at most {max_crop_bytes} bytes")
    if event.latitude is not None and not (-90 <= event.latitude <= 90 and -180 <= (event.longitude or 0) <= 180):
        raise InvalidArgument("location must be a valid latitude/longitude")
    if event.last_seen < event.first_seen:
        raise InvalidArgument("last_seen_time must not be before first_seen_time")


class ReadRecorder:
    """Stores reported events and raises their alerts."""

    def __init__(
        self, pool: Pool, matcher: Matcher, folding: Folding, max_batch: int, max_crop_bytes: int, window: float
    ) -> None:
        self._pool = pool
        self._matcher = matcher
        self._folding = folding
        self._max_batch = max_batch
        self._max_crop_bytes = max_crop_bytes
        self._default_window = window

    async def report(self, events: Sequence[ReadEvent]) -> list[ReadOutcome]:
        """Store, match and alert; results in request order."""
        if not events:
            raise InvalidArgument("events must not be empty")
        if len(events) > self._max_batch:
            raise InvalidArgument(f"at most {self._max_batch} events per call")
        for event in events:
            check_event(event, self._max_crop_bytes)
        outcomes = [ReadOutcome(event.event_id, event.revision) for event in events]
        order = sorted(range(len(events)), key=lambda i: (events[i].event_id, events[i].revision))
        try:
            await self._write(events, order, outcomes)
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
            raise Aborted("conflicting concurrent reports; retry the batch") from None
        for outcome in outcomes:
            metrics.READS.labels(outcome.status.lower()).inc()
        return outcomes

    async def _write(self, events: Sequence[ReadEvent], order: list[int], outcomes: list[ReadOutcome]) -> None:
        changes: list[tuple[int, Change]] = []
        raised: dict[int, list[int]] = {}
        async with self._pool.acquire() as connection, connection.transaction():
            windows = await self._windows(connection)
            for i in order:
                event = events[i]
                outcomes[i].status = await self._store(connection, event)
                if outcomes[i].status == "DUPLICATE" or not event.plate:
                    continue
                reading = PlateText(event.plate, event.confidence, event.alternatives)
                hits = await with_details(connection, self._matcher.raw_hits(reading))
                touched = False
                for hit in hits:
                    window = windows.get(hit.raw.hotlist_id)
                    done = await raise_or_suppress(
                        connection,
                        event.event_id,
                        event.camera_id,
                        hit,
                        self._default_window if window is None else window,
                    )
                    if done is None:
                        continue
                    touched = True
                    changes.append(done)
                    if done[1] is Change.RAISED:
                        raised.setdefault(i, []).append(done[0])
                    else:
                        outcomes[i].suppressed += 1
                if touched:
                    await connection.execute(
                        "UPDATE hotlist.reads SET has_hits = true WHERE event_id = $1", event.event_id
                    )
            await append_changes(connection, changes)
            if raised:
                found = await alerts_by_id(connection, [a for ids in raised.values() for a in ids])
                for i, ids in raised.items():
                    outcomes[i].alerts = [found[a] for a in ids]

    async def _windows(self, connection: Connection) -> dict[int, float | None]:
        rows = await connection.fetch("SELECT hotlist_id, suppression_seconds FROM hotlist.hotlists")
        return {row["hotlist_id"]: row["suppression_seconds"] for row in rows}

    async def _store(self, connection: Connection, event: ReadEvent) -> str:
        fold = self._folding.fold
        created = await connection.fetchval(
            """INSERT INTO hotlist.reads AS r (event_id, revision, camera_id, plate, plate_folded, alternatives,
                   alternatives_folded, confidence, first_seen, last_seen, latitude, longitude, event, crop)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
               ON CONFLICT (event_id) DO UPDATE SET revision = EXCLUDED.revision, camera_id = EXCLUDED.camera_id,
                   plate = EXCLUDED.plate, plate_folded = EXCLUDED.plate_folded,
                   alternatives = EXCLUDED.alternatives, alternatives_folded = EXCLUDED.alternatives_folded,
                   confidence = EXCLUDED.confidence, first_seen = EXCLUDED.first_seen,
                   last_seen = EXCLUDED.last_seen, latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude,
                   event = EXCLUDED.event, crop = coalesce(EXCLUDED.crop, r.crop), update_time = now()
                WHERE r.revision < EXCLUDED.revision
               RETURNING (xmax = 0)""",
            event.event_id,
            event.revision,
            event.camera_id,
            event.plate,
            fold(event.plate),
            [text for text, _ in event.alternatives],
            [fold(text.upper()) for text, _ in event.alternatives],
            event.confidence,
            event.first_seen,
            event.last_seen,
            event.latitude,
            event.longitude,
            event.payload,
            event.crop,
        )
        if created is None:
            return "DUPLICATE"
        return "STORED" if created else "UPDATED"
