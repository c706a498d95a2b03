"""Durable, ordered spool of plate events waiting for the hotlist service (SQLite in WAL mode).

Events are appended before any delivery attempt and removed only after the hotlist service acknowledged them,
so nothing is lost when either service restarts; replay order is append order. SQLite calls are blocking, so
they run on one dedicated thread (which also serialises them; a sqlite3 connection is not thread-safe).
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
"""


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

    async def append(self, events: Sequence[tuple[str, int, bytes]]) -> None:
        """Append (event_id, revision, payload) triples in one transaction."""
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

        def move(connection: sqlite3.Connection) -> None:
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                connection.execute(
                    "INSERT OR REPLACE INTO dead_letter VALUES (?, ?, ?, ?, ?, ?)",
                    (event.seq, event.event_id, event.revision, event.payload, reason, time.time()),
                )
                connection.execute("DELETE FROM spool WHERE seq = ?", (event.seq,))

        await self._file.run(move)

    async def depth(self) -> int:
        """Events waiting."""
        return await self._file.run(lambda c: int(c.execute("SELECT count(*) FROM spool").fetchone()[0]))

    async def dead_letter_count(self) -> int:
        """Events given up on."""
        return await self._file.run(lambda c: int(c.execute("SELECT count(*) FROM dead_letter").fetchone()[0]))
