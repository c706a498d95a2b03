"""Durable journal of accepted frames (SQLite in WAL mode, synchronous FULL): "accepted" means "on disk".

A frame is appended, and the append is on disk, before its camera hears ACCEPTED; it leaves the journal only when
everything it can still contribute to has been spooled as a plate event (see :class:`FrameLedger`). After a crash
the frames still here are recognised again in order: recognition and tracking are deterministic and event ids are
derived from the first frame of a pass, so a replayed pass yields the same event ids and the hotlist service keeps
one event per pass.

Appends from concurrent cameras are committed together (group commit): one fsync per batch of waiting frames, not
one per frame, so the journal does not cap the frame rate at the disk's fsync rate.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections import deque
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from anpr.api.common.v1 import image_pb2
from anpr.ingest.recognition import PendingFrame
from anpr.ingest.sqlite_file import SqliteFile
from anpr.ingest.tracking.model import Gps

_SCHEMA = """
CREATE TABLE IF NOT EXISTS frames (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    camera_id     TEXT NOT NULL,
    frame_id      TEXT NOT NULL,
    capture_time  REAL NOT NULL,
    encoding      INTEGER NOT NULL,
    image         BLOB NOT NULL,
    gps           TEXT,
    plate_regions TEXT NOT NULL,
    plate_crop    INTEGER NOT NULL,
    accepted_at   REAL NOT NULL
);
"""

# Most frames committed in one transaction: bounds the time one commit holds the file.
_MAX_GROUP = 256


class FrameJournal:
    """Accepted frames on disk until released; open with :meth:`open`, close with :meth:`close`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # FULL: an acknowledged frame survives a power cut, not only a process crash.
        self._file = SqliteFile(path, name="ingest-frames", synchronous="FULL")
        self._waiting: list[tuple[PendingFrame, asyncio.Future[int]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Create or open the file."""
        await self._file.open(_SCHEMA)

    async def close(self) -> None:
        """Finish pending appends and close the file; safe to call twice."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
        await self._file.close()

    async def append(self, frame: PendingFrame) -> PendingFrame:
        """Write ``frame`` durably; returns it with its journal sequence number. Raises OSError/sqlite3.Error."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append((frame, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting(), name="ingest-journal-writer")
        return replace(frame, seq=await future)

    async def _write_waiting(self) -> None:
        # Frames that arrive while a commit runs wait for the next one and are committed together.
        while self._waiting:
            group, self._waiting = self._waiting[:_MAX_GROUP], self._waiting[_MAX_GROUP:]
            rows = [_row(frame) for frame, _ in group]
            try:
                seqs = await self._file.run(lambda connection, rows=rows: _insert(connection, rows))  # type: ignore[misc]
            except (OSError, sqlite3.Error) as exc:
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), seq in zip(group, seqs, strict=True):
                if not future.done():
                    future.set_result(seq)

    async def release(self, seqs: Sequence[int]) -> None:
        """Forget frames whose plate events are spooled (or that hold no plate)."""
        if not seqs:
            return

        def delete(connection: sqlite3.Connection) -> None:
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany("DELETE FROM frames WHERE seq = ?", [(seq,) for seq in seqs])

        await self._file.run(delete)

    async def unreleased(self) -> list[PendingFrame]:
        """Every frame still in the journal, in acceptance order (replayed at start-up)."""

        def select(connection: sqlite3.Connection) -> list[PendingFrame]:
            rows = connection.execute(
                "SELECT seq, camera_id, frame_id, capture_time, encoding, image, gps, plate_regions, plate_crop"
                " FROM frames ORDER BY seq"
            ).fetchall()
            return [_frame(row) for row in rows]

        return await self._file.run(select)

    async def depth(self) -> int:
        """Frames in the journal."""
        return await self._file.run(lambda c: int(c.execute("SELECT count(*) FROM frames").fetchone()[0]))


def _insert(connection: sqlite3.Connection, rows: Iterable[tuple[object, ...]]) -> list[int]:
    seqs = []
    with connection:
        connection.execute("BEGIN IMMEDIATE")
        for row in rows:
            cursor = connection.execute(
                "INSERT INTO frames (camera_id, frame_id, capture_time, encoding, image, gps, plate_regions,"
                " plate_crop, accepted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            seqs.append(int(cursor.lastrowid or 0))
    return seqs


def _row(frame: PendingFrame) -> tuple[object, ...]:
    gps = json.dumps(frame.gps.__dict__) if frame.gps is not None else None
    return (
        frame.camera_id,
        frame.frame_id,
        frame.capture_time,
        int(frame.encoding),
        frame.image,
        gps,
        json.dumps(list(frame.plate_regions)),
        int(frame.plate_crop),
        time.time(),
    )


def _frame(row: tuple[Any, ...]) -> PendingFrame:
    seq, camera_id, frame_id, capture_time, encoding, image, gps, regions, crop = row
    return PendingFrame(
        camera_id=str(camera_id),
        frame_id=str(frame_id),
        capture_time=float(capture_time),
        image=bytes(image),
        encoding=image_pb2.ImageEncoding.ValueType(encoding),
        gps=Gps(**json.loads(gps)) if gps is not None else None,
        plate_regions=tuple(json.loads(regions)),
        plate_crop=bool(crop),
        seq=int(seq),
    )


class FrameLedger:
    """Which processed frames may leave the journal.

    A frame is still needed while a pass that is open in the tracker began at or before it: replaying from that
    pass's first frame rebuilds the pass whole. Frames of one camera reach the tracker in acceptance order, so per
    camera the processed frames form a queue, and everything before the first frame of the oldest open pass can go.

    A pass may stay open for as long as a plate stays in view (a car parked in front of a fixed camera): frames held
    longer than ``max_hold_seconds`` go anyway, so the journal cannot grow without bound. The cost: after a crash
    such a pass is rebuilt from a later frame and gets a second event.
    """

    def __init__(self, max_hold_seconds: float = 120.0) -> None:
        self._max_hold = max_hold_seconds
        self._processed: dict[str, deque[tuple[int, str, float]]] = {}

    def processed(self, frame: PendingFrame) -> None:
        """``frame`` went through the tracker."""
        if frame.seq:
            entry = (frame.seq, frame.frame_id, time.monotonic())
            self._processed.setdefault(frame.camera_id, deque()).append(entry)

    def releasable(self, camera_id: str, open_pass_starts: Collection[str], now: float | None = None) -> list[int]:
        """Sequence numbers of the camera's frames that no open pass needs any more (each returned once)."""
        frames = self._processed.get(camera_id)
        released: list[int] = []
        oldest_kept = (time.monotonic() if now is None else now) - self._max_hold
        while frames and (frames[0][1] not in open_pass_starts or frames[0][2] < oldest_kept):
            released.append(frames.popleft()[0])
        if not frames:
            self._processed.pop(camera_id, None)
        return released

    def cameras(self) -> list[str]:
        """Cameras with processed frames still held."""
        return list(self._processed)
