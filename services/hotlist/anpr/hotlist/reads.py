"""ReportReads: store plate events idempotently, match them, raise alerts, all in one transaction per batch.

Every event is judged on its own against the plate event contract (:mod:`anpr.domain.plate_events`, the same
rules ingest applies before emitting): what breaks it is dropped from the event or, when the event itself is
unusable, the event alone is refused (REJECTED) and the rest of the batch is stored. The admitted events of a batch
are written in one transaction, so a failing write stores nothing. Events with the same id are applied in revision
order; a revision at or below the stored one is a harmless duplicate (no matching, no alert), which makes the
ingest service's retries safe.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from anpr.api.common.v1 import plate_event_pb2
from anpr.domain import plate_events
from anpr.hotlist import metrics
from anpr.hotlist.alerts import Alert, Change, alerts_by_id, append_changes, raise_or_suppress
from anpr.hotlist.db import Connection, Pool
from anpr.hotlist.hits import Matcher, PlateText, with_details
from anpr.hotlist.plates import Folding
from anpr.runtime.errors import Aborted, InvalidArgument


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
    # Runs of characters the reader could not read: ``plate`` is then only part of the plate.
    hidden_characters: int = 0


@dataclass
class ReadOutcome:
    """What happened to one reported event."""

    event_id: str
    revision: int
    status: str = "STORED"
    alerts: list[Alert] = field(default_factory=list)
    suppressed: int = 0
    rejection: str = ""


@dataclass(frozen=True)
class Refused:
    """A reported event that breaks the plate event contract: refused alone, with the reason (never the plate)."""

    event_id: str
    revision: int
    message: str


def admit(message: plate_event_pb2.PlateEvent, max_crop_bytes: int) -> plate_event_pb2.PlateEvent | Refused:
    """The reported event repaired to the contract (in place; drops counted), or its refusal.

    An invalid GPS fix costs the event its location, not the event: the read is stored and matched, and a hotlisted
    plate still raises its alert.
    """
    for name in plate_events.repair(message, max_crop_bytes=max_crop_bytes):
        metrics.EVENT_FIELDS_DROPPED.labels(name).inc()
    problems = plate_events.violations(message)
    if problems:
        return Refused(message.event_id, message.revision, "; ".join(problems))
    return message


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

    @property
    def max_crop_bytes(self) -> int:
        """Largest crop stored with a read; a larger one is dropped from its event."""
        return self._max_crop_bytes

    async def report(self, reported: Sequence[ReadEvent | Refused]) -> list[ReadOutcome]:
        """Store, match and alert the admitted events; results (refusals included) in request order."""
        if not reported:
            raise InvalidArgument("events must not be empty")
        if len(reported) > self._max_batch:
            raise InvalidArgument(f"at most {self._max_batch} events per call")
        outcomes = [
            ReadOutcome(e.event_id, e.revision, "REJECTED", rejection=e.message)
            if isinstance(e, Refused)
            else ReadOutcome(e.event_id, e.revision)
            for e in reported
        ]
        events = [e for e in reported if isinstance(e, ReadEvent)]
        admitted = [outcome for outcome in outcomes if outcome.status != "REJECTED"]
        order = sorted(range(len(events)), key=lambda i: (events[i].event_id, events[i].revision))
        try:
            if events:
                await self._write(events, order, admitted)
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
                reading = PlateText(event.plate, event.confidence, event.alternatives, event.hidden_characters)
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
        committed = time.time()
        for i, ids in raised.items():
            for _ in ids:
                metrics.CAPTURE_TO_ALERT_SECONDS.observe(max(0.0, committed - events[i].last_seen.timestamp()))

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
