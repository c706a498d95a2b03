"""Dead letters: plate events the hotlist service refused, kept in the spool file as an alarm, not a bin.

Ingest checks every event against the plate event contract before emitting it, so a dead letter means the two
services disagree (a version skew or a bug): the ``anpr_ingest_dead_letters`` gauge raises an alert. An operator
lists them (the payload holds plate text and crops, so only roles that may read plate events may list them),
fixes the cause, and replays them into the spool, or purges them. Retention deletes them like any other copy of
a plate event, so crops are never kept outside the retention rules.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from anpr.api.common.v1 import plate_event_pb2
from anpr.domain import plate_events
from anpr.ingest import metrics
from anpr.ingest.spool import Spool
from anpr.runtime import metrics as runtime_metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetter:
    """One refused event revision."""

    dead_letter_id: int
    event_id: str
    revision: int
    payload: bytes  # a serialised anpr.common.v1.PlateEvent, crop included
    reason: str
    dead_at: float


def _selection(ids: Sequence[int] | None) -> tuple[str, list[int]]:
    if ids is None:
        return "", []
    return f"WHERE seq IN ({','.join('?' * len(ids))})", list(ids)


class DeadLetters:
    """Lists, replays, purges and expires the dead letters of one spool file."""

    def __init__(self, spool: Spool, *, retention_seconds: float, wake_delivery: Callable[[], None]) -> None:
        self._file = spool.file
        self._retention = retention_seconds
        self._wake_delivery = wake_delivery

    async def count(self) -> int:
        """Dead letters held (also published as the gauge)."""
        count = await self._file.run(lambda c: int(c.execute("SELECT count(*) FROM dead_letter").fetchone()[0]))
        metrics.DEAD_LETTERS.set(count)
        return count

    async def page(self, after: int, limit: int) -> list[DeadLetter]:
        """Up to ``limit`` dead letters after id ``after``, oldest first."""

        def page(connection: sqlite3.Connection) -> list[DeadLetter]:
            rows = connection.execute(
                """SELECT seq, event_id, revision, payload, reason, dead_at FROM dead_letter
                   WHERE seq > ? ORDER BY seq LIMIT ?""",
                (after, limit),
            ).fetchall()
            return [DeadLetter(int(r[0]), str(r[1]), int(r[2]), bytes(r[3]), str(r[4]), float(r[5])) for r in rows]

        return await self._file.run(page)

    async def replay(self, ids: Sequence[int] | None) -> int:
        """Move dead letters (``None``: all) back to the end of the spool; returns how many.

        The contract's repairs are applied again on the way: a fault the current version drops from events (an
        invalid GPS fix, say) no longer stands in the way of the reading.
        """
        where, arguments = _selection(ids)
        now = time.time()

        def replay(connection: sqlite3.Connection) -> int:
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                rows = connection.execute(
                    f"SELECT seq, event_id, revision, payload FROM dead_letter {where} ORDER BY seq",  # noqa: S608
                    arguments,
                ).fetchall()
                connection.executemany(
                    "INSERT INTO spool (event_id, revision, payload, enqueued_at) VALUES (?, ?, ?, ?)",
                    [(r[1], r[2], _repaired(bytes(r[3])), now) for r in rows],
                )
                connection.executemany("DELETE FROM dead_letter WHERE seq = ?", [(r[0],) for r in rows])
                return len(rows)

        replayed = await self._file.run(replay)
        if replayed:
            metrics.SPOOL_DEPTH.inc(replayed)
            metrics.DEAD_LETTERS_REMOVED.labels("replayed").inc(replayed)
            log.info("dead letters replayed", extra={"events": replayed})
            self._wake_delivery()
        await self.count()
        return replayed

    async def purge(self, ids: Sequence[int] | None) -> int:
        """Delete dead letters (``None``: all) for good; returns how many."""
        where, arguments = _selection(ids)

        def purge(connection: sqlite3.Connection) -> int:
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                return connection.execute(f"DELETE FROM dead_letter {where}", arguments).rowcount  # noqa: S608

        purged = await self._file.run(purge)
        metrics.DEAD_LETTERS_REMOVED.labels("purged").inc(purged)
        if purged:
            log.info("dead letters purged", extra={"events": purged})
        await self.count()
        return purged

    async def expire(self) -> int:
        """Delete dead letters older than the retention period; returns how many."""
        horizon = time.time() - self._retention

        def expire(connection: sqlite3.Connection) -> int:
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                return connection.execute("DELETE FROM dead_letter WHERE dead_at < ?", (horizon,)).rowcount

        expired = await self._file.run(expire)
        metrics.DEAD_LETTERS_REMOVED.labels("expired").inc(expired)
        await self.count()
        return expired

    async def run(self, interval_seconds: float) -> None:
        """Expire old dead letters and refresh the gauge every ``interval_seconds`` until cancelled."""
        runtime_metrics.RETENTION_INTERVAL.labels("ingest_dead_letters").set(interval_seconds)
        while True:
            try:
                expired = await self.expire()
                if expired:
                    log.info("expired dead letters past retention", extra={"events": expired})
                runtime_metrics.retention_succeeded("ingest_dead_letters")
            except sqlite3.Error as exc:
                runtime_metrics.RETENTION_FAILURES.labels("ingest_dead_letters").inc()
                log.warning("dead-letter retention failed; retrying later: %s", exc)
            await asyncio.sleep(interval_seconds)


def _repaired(payload: bytes) -> bytes:
    event = plate_event_pb2.PlateEvent.FromString(payload)
    for name in plate_events.repair(event):
        metrics.EVENT_FIELDS_DROPPED.labels(name).inc()
    return event.SerializeToString()
