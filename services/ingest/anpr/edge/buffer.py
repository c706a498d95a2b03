"""On-disk FIFO of frames waiting for the link to ingest, with a size cap (SQLite in WAL mode).

Eviction policy: when adding a frame would exceed the cap, the *oldest* frames are dropped (and counted) until it
fits: on a long outage the most recent frames, closest to what is happening now, are the ones worth keeping.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from anpr.edge import metrics
from anpr.ingest.sqlite_file import SqliteFile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS frames (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    payload BLOB NOT NULL,
    size    INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class BufferedFrame:
    """One frame in the buffer (``payload`` is a serialised ``anpr.ingest.v1.Frame``)."""

    seq: int
    payload: bytes


class FrameBuffer:
    """Bounded disk buffer; all SQLite work runs on one dedicated thread."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        # NORMAL: a lost last frame on power loss is acceptable here.
        self._file = SqliteFile(path, name="edge-buffer", synchronous="NORMAL")
        self._bytes = 0
        self._frames = 0
        self.evicted = 0
        self.added = asyncio.Event()

    async def open(self) -> None:
        """Open (or create) the file and take stock of what an earlier run left."""

        await self._file.open(_SCHEMA)
        count, size = await self._file.run(
            lambda c: c.execute("SELECT count(*), coalesce(sum(size), 0) FROM frames").fetchone()
        )
        self._frames, self._bytes = int(count), int(size)
        self._publish()

    async def close(self) -> None:
        """Close the file; safe to call twice."""

        await self._file.close()

    def _publish(self) -> None:
        metrics.BUFFER_FRAMES.set(self._frames)
        metrics.BUFFER_BYTES.set(self._bytes)

    @property
    def frames(self) -> int:
        """Frames buffered."""
        return self._frames

    async def append(self, payload: bytes) -> int:
        """Buffer a frame, evicting the oldest ones beyond the cap; returns how many were evicted."""
        size = len(payload)
        if size > self.max_bytes:
            raise ValueError(f"a frame of {size} bytes cannot fit a buffer of {self.max_bytes} bytes")

        def append(connection: sqlite3.Connection) -> tuple[int, int]:
            evicted = evicted_bytes = 0
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                excess = self._bytes + size - self.max_bytes
                if excess > 0:
                    rows = connection.execute("SELECT seq, size FROM frames ORDER BY seq").fetchall()
                    drop = []
                    for seq, row_size in rows:
                        if evicted_bytes >= excess:
                            break
                        drop.append((seq,))
                        evicted_bytes += row_size
                    connection.executemany("DELETE FROM frames WHERE seq = ?", drop)
                    evicted = len(drop)
                connection.execute("INSERT INTO frames (payload, size) VALUES (?, ?)", (payload, size))
            return evicted, evicted_bytes

        evicted, evicted_bytes = await self._file.run(append)
        self._frames += 1 - evicted
        self._bytes += size - evicted_bytes
        if evicted:
            self.evicted += evicted
            metrics.FRAMES_EVICTED.inc(evicted)
        self._publish()
        self.added.set()
        return evicted

    async def after(self, seq: int, limit: int) -> list[BufferedFrame]:
        """Up to ``limit`` frames with a sequence number above ``seq``, oldest first."""

        def read(connection: sqlite3.Connection) -> list[BufferedFrame]:
            rows = connection.execute(
                "SELECT seq, payload FROM frames WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
            ).fetchall()
            return [BufferedFrame(int(r[0]), bytes(r[1])) for r in rows]

        return await self._file.run(read)

    async def remove(self, seqs: Sequence[int]) -> None:
        """Forget frames ingest acknowledged."""

        def remove(connection: sqlite3.Connection) -> tuple[int, int]:
            count = total = 0
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                for seq in seqs:
                    row = connection.execute("DELETE FROM frames WHERE seq = ? RETURNING size", (seq,)).fetchone()
                    if row is not None:
                        count, total = count + 1, total + int(row[0])
            return count, total

        count, total = await self._file.run(remove)
        self._frames -= count
        self._bytes -= total
        self._publish()
