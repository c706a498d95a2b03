"""Ingest's own event table (GetPlateEvents) catches up after a PostgreSQL outage.

Delivery to the hotlist service must not wait for PostgreSQL, so a failed write of an event revision (or of a
delivery mark) is owed, not dropped: it is noted in the spool file's ``store_backlog`` table, in the same SQLite
transaction that spools the event, and one background task writes the backlog to PostgreSQL in order, backing
off while the database is unreachable.

A revision written late may already have been delivered meanwhile (its delivery mark found no row to mark), so
after writing revisions the task marks as delivered those that are no longer in the spool and were not set aside
as dead letters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import asyncpg

from anpr.api.common.v1 import plate_event_pb2
from anpr.ingest import metrics
from anpr.ingest.event_store import EventStore
from anpr.ingest.spool import BacklogEntry, Spool

log = logging.getLogger(__name__)

# What a write to an unreachable or failing database raises (asyncpg's pool raises OSError subclasses and
# asyncpg.InterfaceError / PostgresError, and TimeoutError when it cannot connect in time).
DATABASE_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class StoreCatchUp:
    """Writes to the event table, holding on disk what fails; :meth:`run` as one background task."""

    def __init__(
        self,
        store: EventStore,
        spool: Spool,
        *,
        batch_size: int = 200,
        backoff_initial_seconds: float = 0.5,
        backoff_max_seconds: float = 10.0,
    ) -> None:
        self._store = store
        self._spool = spool
        self._batch_size = batch_size
        self._backoff_initial = backoff_initial_seconds
        self._backoff_max = backoff_max_seconds
        self._wake = asyncio.Event()

    async def save(self, events: Sequence[plate_event_pb2.PlateEvent]) -> bool:
        """Write revisions now; False when the database failed (the caller then spools them as owed)."""
        if await self._spool.backlog_depth():
            # Older revisions are still owed: writing this one first could let the backlog's older revision
            # land after it (harmless, revisions only go up) but, worse, mark it delivered out of order.
            return False
        try:
            await self._store.save(events)
        except DATABASE_ERRORS as exc:
            metrics.STORE_WRITE_FAILURES.inc()
            log.warning("could not store plate events for GetPlateEvents; kept on disk to store later: %s", exc)
            return False
        return True

    def owed(self, count: int) -> None:
        """The caller spooled ``count`` revisions as owed to the store: count them and wake the task."""
        metrics.STORE_BACKLOG.inc(count)
        self._wake.set()

    async def mark_delivered(self, delivered: Sequence[tuple[str, int]]) -> None:
        """Record delivery of (event id, revision) pairs, now or, if the database fails, later."""
        try:
            await self._store.mark_delivered(delivered)
            return
        except DATABASE_ERRORS as exc:
            metrics.STORE_WRITE_FAILURES.inc()
            log.warning("could not record delivery state; kept on disk to record later: %s", exc)
        await self._spool.hold_marks(delivered)
        self.owed(len(delivered))

    async def run(self) -> None:
        """Write the backlog until cancelled."""
        metrics.STORE_BACKLOG.set(await self._spool.backlog_depth())
        backoff = self._backoff_initial
        while True:
            entries = await self._spool.backlog(self._batch_size)
            if not entries:
                self._wake.clear()
                # The timeout is a safety net only: owed() wakes the loop.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=5.0)
                continue
            try:
                await self._write(entries)
            except DATABASE_ERRORS as exc:
                metrics.STORE_WRITE_FAILURES.inc()
                log.info("event table still unreachable; %d entries owed: %s", len(entries), exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._backoff_max)
                continue
            backoff = self._backoff_initial
            await self._spool.clear_backlog([entry.seq for entry in entries])
            metrics.STORE_BACKLOG.dec(len(entries))
            log.info("caught up on the event table", extra={"entries": len(entries)})

    async def _write(self, entries: list[BacklogEntry]) -> None:
        revisions = [(e.event_id, e.revision, e.payload) for e in entries if e.payload is not None]
        if revisions:
            await self._store.save([plate_event_pb2.PlateEvent.FromString(payload) for _, _, payload in revisions])
        pairs = [(event_id, revision) for event_id, revision, _ in revisions]
        waiting = await self._spool.undelivered(pairs)
        marks = [(e.event_id, e.revision) for e in entries if e.payload is None]
        marks += [pair for pair in pairs if pair not in waiting]
        if marks:
            await self._store.mark_delivered(marks)
