"""Durable, ordered spool of plate events waiting for the hotlist service (SQLite in WAL mode).

Events are appended before any delivery attempt and removed only after the hotlist service acknowledged them,
so nothing is lost when either service restarts; replay order is append order. SQLite calls are blocking, so
they run on one dedicated thread (which also serialises them; a sqlite3 connection is not thread-safe).

The same file holds two more tables: ``dead_letter`` (events the hotlist service refused, see
:mod:`anpr.ingest.dead_letters`) and ``store_backlog`` (event revisions and delivery marks that could not be
written to PostgreSQL, see :mod:`anpr.ingest.store_catch_up`). One file means one transaction can spool an event
and note that its database row is still owed, so a crash cannot separate the two.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from anpr.ingest.sqlite_file import SqliteFile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    payload     BLOB NOT NULL,
    enqueued_at REAL NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS dead_letter (
    seq         INTEGER PRIMARY KEY,
    event_id    TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    payload     BLOB NOT NULL,
    reason      TEXT NOT NULL,
    dead_at     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letter_dead_at ON dead_letter (dead_at);
CREATE INDEX IF NOT EXISTS spool_event ON spool (event_id, revision);
CREATE TABLE IF NOT EXISTS store_backlog (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    payload     BLOB  -- a serialised PlateEvent to save; NULL: a delivery mark to record
);
"""


@dataclass(frozen=True)
class BacklogEntry:
    """An event revision (``payload`` set) or a delivery mark (``payload`` None) owed to PostgreSQL."""

    seq: int
    event_id: str
    revision: int
    payload: bytes | None


@dataclass(frozen=True)
class SpooledEvent:
    """One event revision in the spool."""

    seq: int
    event_id: str
    revision: int
    payload: bytes  # a serialised anpr.common.v1.PlateEvent
    attempts: int


class Spool:
    """Append-only queue on disk; open with :meth:`open`, close with :meth:`close`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # FULL: an acknowledged append survives a power cut, not only a process crash.
        self._file = SqliteFile(path, name="ingest-spool", synchronous="FULL")

    async def open(self) -> None:
        """Create or open the database file."""

        await self._file.open(_SCHEMA)

    async def close(self) -> None:
        """Close the file; safe to call twice."""

        await self._file.close()

    @property
    def file(self) -> SqliteFile:
        """The SQLite file (for the dead-letter and store-backlog tables it also holds)."""
        return self._file

    async def append(self, events: Sequence[tuple[str, int, bytes]], *, owed_to_store: bool = False) -> None:
        """Append (event_id, revision, payload) triples in one transaction; with ``owed_to_store`` also note in
        the same transaction that their PostgreSQL rows are still to be written."""
        if not events:
            return
        now = time.time()

        def append(connection: sqlite3.Connection) -> None:
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany(
                    "INSERT INTO spool (event_id, revision, payload, enqueued_at) VALUES (?, ?, ?, ?)",
                    [(event_id, revision, payload, now) for event_id, revision, payload in events],
                )
                if owed_to_store:
                    connection.executemany(
                        "INSERT INTO store_backlog (event_id, revision, payload) VALUES (?, ?, ?)", events
                    )

        await self._file.run(append)

    async def peek(self, limit: int) -> list[SpooledEvent]:
        """The oldest ``limit`` events, in order."""

        def peek(connection: sqlite3.Connection) -> list[SpooledEvent]:
            rows = connection.execute(
                "SELECT seq, event_id, revision, payload, attempts FROM spool ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
            return [SpooledEvent(int(r[0]), str(r[1]), int(r[2]), bytes(r[3]), int(r[4])) for r in rows]

        return await self._file.run(peek)

    async def remove(self, seqs: Sequence[int]) -> None:
        """Forget delivered events."""

        def remove(connection: sqlite3.Connection) -> None:
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany("DELETE FROM spool WHERE seq = ?", [(seq,) for seq in seqs])

        await self._file.run(remove)

    async def record_attempt(self, seqs: Sequence[int]) -> None:
        """Count a failed delivery attempt."""

        def record(connection: sqlite3.Connection) -> None:
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany("UPDATE spool SET attempts = attempts + 1 WHERE seq = ?", [(s,) for s in seqs])

        await self._file.run(record)

    async def dead_letter(self, event: SpooledEvent, reason: str) -> None:
        """Move an event the hotlist service will never accept out of the way, keeping it for inspection."""
        await self.settle([], [(event, reason)])

    async def settle(self, delivered: Sequence[int], refused: Sequence[tuple[SpooledEvent, str]]) -> None:
        """In one transaction: forget delivered events (by seq) and move refused ones to the dead letters."""
        now = time.time()

        def settle(connection: sqlite3.Connection) -> None:
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany("DELETE FROM spool WHERE seq = ?", [(seq,) for seq in delivered])
                connection.executemany(
                    "INSERT OR REPLACE INTO dead_letter VALUES (?, ?, ?, ?, ?, ?)",
                    [(e.seq, e.event_id, e.revision, e.payload, reason, now) for e, reason in refused],
                )
                connection.executemany("DELETE FROM spool WHERE seq = ?", [(e.seq,) for e, _ in refused])

        await self._file.run(settle)

    async def depth(self) -> int:
        """Events waiting."""
        return await self._file.run(lambda c: int(c.execute("SELECT count(*) FROM spool").fetchone()[0]))

    async def dead_letter_count(self) -> int:
        """Events given up on."""
        return await self._file.run(lambda c: int(c.execute("SELECT count(*) FROM dead_letter").fetchone()[0]))

    async def hold_marks(self, delivered: Sequence[tuple[str, int]]) -> None:
        """Note delivery marks (event id, revision) that could not be written to PostgreSQL."""

        def hold(connection: sqlite3.Connection) -> None:
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany(
                    "INSERT INTO store_backlog (event_id, revision, payload) VALUES (?, ?, NULL)", delivered
                )

        await self._file.run(hold)

    async def backlog(self, limit: int) -> list[BacklogEntry]:
        """The oldest ``limit`` entries owed to PostgreSQL, in order."""

        def backlog(connection: sqlite3.Connection) -> list[BacklogEntry]:
            rows = connection.execute(
                "SELECT seq, event_id, revision, payload FROM store_backlog ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
            return [BacklogEntry(int(r[0]), str(r[1]), int(r[2]), None if r[3] is None else bytes(r[3])) for r in rows]

        return await self._file.run(backlog)

    async def clear_backlog(self, seqs: Sequence[int]) -> None:
        """Forget backlog entries written to PostgreSQL."""

        def clear(connection: sqlite3.Connection) -> None:
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany("DELETE FROM store_backlog WHERE seq = ?", [(seq,) for seq in seqs])

        await self._file.run(clear)

    async def backlog_depth(self) -> int:
        """Entries owed to PostgreSQL."""
        return await self._file.run(lambda c: int(c.execute("SELECT count(*) FROM store_backlog").fetchone()[0]))

    async def undelivered(self, events: Sequence[tuple[str, int]]) -> set[tuple[str, int]]:
        """Which of these (event id, revision) pairs are still waiting in the spool or were set aside."""

        def find(connection: sqlite3.Connection) -> set[tuple[str, int]]:
            found = set()
            for event_id, revision in events:
                row = connection.execute(
                    """SELECT 1 WHERE EXISTS (SELECT 1 FROM spool WHERE event_id = ?1 AND revision = ?2)
                          OR EXISTS (SELECT 1 FROM dead_letter WHERE event_id = ?1 AND revision = ?2)""",
                    (event_id, revision),
                ).fetchone()
                if row is not None:
                    found.add((event_id, revision))
            return found

        return await self._file.run(find)
