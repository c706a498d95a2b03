"""The retention job (POPIA): reads without hits go after N days, reads with hits (and their alerts) after M days.

Deletes run in batches of a bounded size, each its own short transaction, so the job never holds long locks or
bloats one transaction. Only one replica runs it at a time (a session advisory lock); the others skip the round.
Each run that deleted anything writes one audit row with the counts. Tombstones of deleted entries are kept a
week, far longer than any replica needs to catch up (a replica that was away longer reloads in full anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from anpr.hotlist import audit, metrics
from anpr.hotlist.db import Connection, Pool
from anpr.runtime import metrics as runtime_metrics

log = logging.getLogger(__name__)
_LOCK_KEY = 0x616E70725F726574  # "anpr_ret"
TOMBSTONE_KEEP = timedelta(days=7)
RETENTION_JOB = "hotlist_reads"


@dataclass(frozen=True)
class RetentionPolicy:
    """How long reads are kept, and how much one statement deletes."""

    without_hits: timedelta
    with_hits: timedelta
    batch_size: int


@dataclass
class PurgeCounts:
    """Rows deleted by one run."""

    reads_without_hits: int = 0
    reads_with_hits: int = 0
    alerts: int = 0
    tombstones: int = 0
    ran: bool = False


class RetentionJob:
    """Runs :meth:`run_once` every interval until stopped."""

    def __init__(self, pool: Pool, policy: RetentionPolicy, interval_seconds: float) -> None:
        self._pool = pool
        self._policy = policy
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> PurgeCounts:
        """Purge what is due; ``ran`` is False when another replica held the job lock."""
        counts = PurgeCounts()
        started = time.perf_counter()
        async with self._pool.acquire() as connection:
            if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY):
                return counts
            try:
                counts.ran = True
                counts.reads_without_hits = await self._purge_reads(connection, False, self._policy.without_hits)
                counts.alerts = await connection.fetchval(
                    """SELECT count(*) FROM hotlist.alerts a JOIN hotlist.reads r USING (event_id)
                        WHERE r.has_hits AND r.last_seen < now() - $1::interval""",
                    self._policy.with_hits,
                )
                counts.reads_with_hits = await self._purge_reads(connection, True, self._policy.with_hits)
                counts.tombstones = await self._batched(
                    connection,
                    """WITH gone AS (DELETE FROM hotlist.entry_tombstones WHERE ctid IN (
                           SELECT ctid FROM hotlist.entry_tombstones WHERE delete_time < now() - $1::interval
                            LIMIT $2) RETURNING 1)
                       SELECT count(*) FROM gone""",
                    TOMBSTONE_KEEP,
                )
                if counts.reads_without_hits or counts.reads_with_hits:
                    await audit.record(
                        connection,
                        "RETENTION_PURGED",
                        target_type="reads",
                        details={
                            "reads_without_hits": counts.reads_without_hits,
                            "reads_with_hits": counts.reads_with_hits,
                            "alerts": counts.alerts,
                        },
                    )
            finally:
                await connection.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
        metrics.RETENTION_DELETED.labels("reads_without_hits").inc(counts.reads_without_hits)
        metrics.RETENTION_DELETED.labels("reads_with_hits").inc(counts.reads_with_hits)
        metrics.RETENTION_DELETED.labels("alerts").inc(counts.alerts)
        metrics.RETENTION_RUN_SECONDS.observe(time.perf_counter() - started)
        # Only the replica that held the lock ran: max over replicas is the fleet's last success.
        runtime_metrics.retention_succeeded(RETENTION_JOB)
        return counts

    async def _purge_reads(self, connection: Connection, has_hits: bool, keep: timedelta) -> int:
        # Alerts and their stream rows go with their read (ON DELETE CASCADE).
        return await self._batched(
            connection,
            """WITH gone AS (DELETE FROM hotlist.reads WHERE event_id IN (
                   SELECT event_id FROM hotlist.reads
                    WHERE has_hits = $3 AND last_seen < now() - $1::interval
                    LIMIT $2) RETURNING 1)
               SELECT count(*) FROM gone""",
            keep,
            has_hits,
        )

    async def _batched(self, connection: Connection, statement: str, keep: timedelta, *more: object) -> int:
        total = 0
        while True:
            deleted: int = await connection.fetchval(statement, keep, self._policy.batch_size, *more)
            total += deleted
            if deleted < self._policy.batch_size:
                return total
            await asyncio.sleep(0)  # let calls on this loop through between batches

    def start(self) -> None:
        """Run every interval in the background."""
        runtime_metrics.RETENTION_INTERVAL.labels(RETENTION_JOB).set(self._interval)
        self._task = asyncio.create_task(self._run(), name="hotlist-retention")

    async def _run(self) -> None:
        while True:
            try:
                counts = await self.run_once()
                if counts.reads_without_hits or counts.reads_with_hits:
                    log.info(
                        "retention purged reads",
                        extra={"without_hits": counts.reads_without_hits, "with_hits": counts.reads_with_hits},
                    )
            except Exception:
                runtime_metrics.RETENTION_FAILURES.labels(RETENTION_JOB).inc()
                log.exception("retention run failed; retrying next interval")
            await asyncio.sleep(self._interval)

    async def stop(self) -> None:
        """Stop the job; safe to call twice."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
