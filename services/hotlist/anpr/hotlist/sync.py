"""Keeps this replica's match index in step with PostgreSQL, the source of truth.

Every change of a list bumps its revision under a row lock and sends ``NOTIFY anpr_hotlist_lists, '<id>'`` in the
same transaction (delivered at commit). Each replica's worker then reads, in one repeatable-read snapshot, the
list's settings, the entries stamped with a higher revision than it has, and the tombstones of deleted ones; a
changed epoch (REPLACE import) or an unknown list means a full reload of that list. The replica that made the
change refreshes itself before answering, so its callers read their own writes; the others follow within
milliseconds. A periodic revision check and a full check after a reconnect cover lost notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from anpr.hotlist import metrics
from anpr.hotlist.db import Connection, Pool
from anpr.hotlist.matching import EntryColumns, ListInfo, MatchIndex, Strictness
from anpr.hotlist.patterns import MAX_PATTERN_LENGTH
from anpr.runtime.memory import return_free_memory

log = logging.getLogger(__name__)
_CURSOR_PREFETCH = 20_000


def list_info(row: Any, default_strictness: Strictness) -> ListInfo:
    """Index view of a hotlists row."""
    strictness = Strictness(row["strictness"]) if row["strictness"] else default_strictness
    return ListInfo(
        hotlist_id=row["hotlist_id"],
        name=row["name"],
        priority=row["priority"],
        active=row["active"],
        strictness=strictness,
        min_match_score=float(row["min_match_score"]),
    )


def _columns(rows: list[Any]) -> EntryColumns:
    """A chunk of entry rows as columns, so a million-entry list never exists as a million Python objects."""
    return EntryColumns(
        np.fromiter((row["entry_id"] for row in rows), dtype=np.int64, count=len(rows)),
        np.fromiter((row["hotlist_id"] for row in rows), dtype=np.int64, count=len(rows)),
        np.array([row["target"] for row in rows], dtype=f"S{MAX_PATTERN_LENGTH}"),
        np.fromiter((row["is_pattern"] for row in rows), dtype=np.bool_, count=len(rows)),
        np.fromiter(
            (math.inf if (e := row["expire_time"]) is None else e.timestamp() for row in rows),
            dtype=np.float64,
            count=len(rows),
        ),
    )


async def _fetch_columns(connection: Connection, query: str, *args: Any) -> EntryColumns:
    """Entry rows in chunks, each turned into columns at once (inside the caller's transaction)."""
    cursor = await connection.cursor(query, *args)
    chunks = []
    while rows := await cursor.fetch(_CURSOR_PREFETCH):
        chunks.append(_columns(rows))
    return EntryColumns.concatenate(chunks)


async def apply_changes(index: MatchIndex, removed: list[int], changed: EntryColumns) -> bool:
    """Remove and upsert one list's changed entries: in place when that is quick (a few entries, no rebuild),
    else on a copy in a thread that is then swapped in (:meth:`MatchIndex.in_place`). Returns whether the key
    arrays were rebuilt (the caller then releases the build's peak: :func:`_release_memory`)."""
    if index.in_place(removed, changed):
        index.change(removed, changed)
        return False
    return await _swap_in(index, lambda staged: staged.change(removed, changed))


async def _swap_in(index: MatchIndex, change: Callable[[MatchIndex], None]) -> bool:
    """Apply ``change`` to a copy of ``index`` in a thread and adopt the copy: a change that rebuilds the key arrays
    takes seconds at a million entries, and matching and health checks on this replica keep answering meanwhile.
    Returns whether the copy's arrays were rebuilt."""

    def changed_copy() -> MatchIndex:
        staged = index.clone()
        change(staged)
        return staged

    staged = await asyncio.to_thread(changed_copy)
    rebuilt = staged.rebuilds != index.rebuilds
    index.adopt(staged)
    return rebuilt


async def _release_memory() -> None:
    """Hand a rebuild's peak (key arrays, the replaced index, the fetched rows) back to the system; call it once the
    caller holds no reference to them any more."""
    await asyncio.to_thread(return_free_memory)


class IndexSync:
    """Loads the index at start-up and applies every later change of any list."""

    def __init__(self, pool: Pool, index: MatchIndex, default_strictness: Strictness, poll_seconds: float) -> None:
        self.index = index
        self._pool = pool
        self._default_strictness = default_strictness
        self._poll_seconds = poll_seconds
        self._known: dict[int, tuple[int, int]] = {}
        self._lock = asyncio.Lock()
        self._pending: set[int] = set()
        self._check_all = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def load_all(self) -> None:
        """Bring every list up to date (start-up, reconnects, periodic check)."""
        async with self._pool.acquire() as connection:
            rows = await connection.fetch("SELECT hotlist_id, revision, epoch FROM hotlist.hotlists")
        present = {row["hotlist_id"]: (row["revision"], row["epoch"]) for row in rows}
        for hotlist_id in set(self._known) - set(present):
            await self.refresh(hotlist_id)
        for hotlist_id, state in present.items():
            if self._known.get(hotlist_id) != state:
                await self.refresh(hotlist_id)

    async def refresh(self, hotlist_id: int) -> None:
        """Apply whatever changed in one list since this replica last looked."""
        async with self._lock, self._pool.acquire() as connection:
            started = time.perf_counter()
            async with connection.transaction(isolation="repeatable_read", readonly=True):
                mode = await self._refresh(connection, hotlist_id)
            metrics.INDEX_SYNCS.labels(mode).inc()
            metrics.INDEX_SYNC_SECONDS.labels(mode).observe(time.perf_counter() - started)
            metrics.INDEX_ENTRIES.set(len(self.index))

    async def _refresh(self, connection: Connection, hotlist_id: int) -> str:
        row = await connection.fetchrow(
            """SELECT hotlist_id, name, priority, active, strictness, min_match_score, revision, epoch
                 FROM hotlist.hotlists WHERE hotlist_id = $1""",
            hotlist_id,
        )
        if row is None:
            # A dropped list of a million entries takes a second to forget and leaves the arrays to rebuild.
            if await _swap_in(self.index, lambda staged: staged.drop_list(hotlist_id)):
                await _release_memory()
            self._known.pop(hotlist_id, None)
            return "drop"
        info = list_info(row, self._default_strictness)
        known = self._known.get(hotlist_id)
        if known is None or known[1] != row["epoch"]:
            entries = await _fetch_columns(
                connection,
                """SELECT entry_id, hotlist_id, target, is_pattern, expire_time
                     FROM hotlist.entries WHERE hotlist_id = $1""",
                hotlist_id,
            )
            await _swap_in(self.index, lambda staged: staged.load_list_columns(info, entries))
            del entries
            await _release_memory()
            mode = "full"
        else:
            self.index.set_list(info)
            gone = await connection.fetch(
                "SELECT entry_id FROM hotlist.entry_tombstones WHERE hotlist_id = $1 AND revision > $2",
                hotlist_id,
                known[0],
            )
            changed = await _fetch_columns(
                connection,
                """SELECT entry_id, hotlist_id, target, is_pattern, expire_time
                     FROM hotlist.entries WHERE hotlist_id = $1 AND revision > $2""",
                hotlist_id,
                known[0],
            )
            rebuilt = await apply_changes(self.index, [row["entry_id"] for row in gone], changed)
            del changed
            if rebuilt:
                await _release_memory()
            mode = "incremental"
        self._known[hotlist_id] = (row["revision"], row["epoch"])
        return mode

    # -- background ---------------------------------------------------------------------------------------------

    def notified(self, payload: str) -> None:
        """LISTEN callback: a list changed somewhere."""
        with contextlib.suppress(ValueError):
            self._pending.add(int(payload))
            self._wake.set()

    def reconnected(self) -> None:
        """Notifications may have been missed: check every list."""
        self._check_all = True
        self._wake.set()

    def start(self) -> None:
        """Run the worker that applies notified changes and checks all lists periodically."""
        self._task = asyncio.create_task(self._run(), name="hotlist-index-sync")

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
            self._wake.clear()
            pending, self._pending = self._pending, set()
            check_all, self._check_all = self._check_all or not pending, False
            try:
                for hotlist_id in sorted(pending):
                    await self.refresh(hotlist_id)
                if check_all:
                    await self.load_all()
            except Exception:
                # The next notification or poll retries; matching keeps serving the last good index meanwhile.
                log.exception("index refresh failed")
                self._check_all = True

    async def stop(self) -> None:
        """Stop the worker; safe to call twice."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
