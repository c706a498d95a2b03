"""The frame journal on a real SQLite file, and which processed frames may leave it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from anpr.ingest.journal import FrameJournal, FrameLedger
from anpr.ingest.recognition import PendingFrame
from anpr.ingest.tracking.model import Gps


def pending(camera_id: str, frame_id: str, seq: int = 0) -> PendingFrame:
    return PendingFrame(camera_id, frame_id, 1_700_000_000.0, b"\xff\xd8\xff" + frame_id.encode(), seq=seq)


async def test_concurrent_appends_are_durable_ordered_and_survive_reopening(tmp_path: Path) -> None:
    journal = FrameJournal(tmp_path / "frames.sqlite3")
    await journal.open()
    frames = [pending("cam-1", f"f{i}") for i in range(40)]
    frames[3] = PendingFrame(
        "cam-1", "f3", 1.5, b"x", gps=Gps(-33.9, 18.4, accuracy_meters=5.0), plate_regions=("ZA",), plate_crop=True
    )
    journaled = await asyncio.gather(*(journal.append(f) for f in frames))  # committed in groups
    assert [f.seq for f in journaled] == sorted(f.seq for f in journaled)
    assert len({f.seq for f in journaled}) == 40
    await journal.release([journaled[0].seq, journaled[1].seq])
    await journal.close()

    reopened = FrameJournal(tmp_path / "frames.sqlite3")
    await reopened.open()
    try:
        replayed = await reopened.unreleased()
    finally:
        await reopened.close()
    assert replayed == journaled[2:]  # every field back, in acceptance order


def test_frames_leave_only_when_no_open_pass_began_at_or_before_them() -> None:
    ledger = FrameLedger()
    for seq, frame_id in enumerate(["a", "b", "c", "d"], start=1):
        ledger.processed(pending("cam-1", frame_id, seq))
    ledger.processed(pending("cam-2", "z", 9))
    # A pass open since "c": "a" and "b" may go, "c" and "d" are needed to rebuild the pass after a crash.
    assert ledger.releasable("cam-1", {"c"}) == [1, 2]
    assert ledger.releasable("cam-1", {"c"}) == []
    # The pass ended (its final event is spooled): the rest go; other cameras are not touched.
    assert ledger.releasable("cam-1", set()) == [3, 4]
    assert ledger.cameras() == ["cam-2"]
    ledger.processed(pending("cam-3", "unjournaled"))  # seq 0: nothing to release
    assert ledger.cameras() == ["cam-2"]


def test_a_pass_open_for_longer_than_the_hold_limit_does_not_pin_the_journal() -> None:
    # A car parked in view keeps its pass open for hours: its frames may not pile up on disk meanwhile.
    ledger = FrameLedger(max_hold_seconds=120.0)
    for seq, frame_id in enumerate(["a", "b", "c"], start=1):
        ledger.processed(pending("cam-1", frame_id, seq))
    assert ledger.releasable("cam-1", {"a"}) == []
    assert ledger.releasable("cam-1", {"a"}, now=time.monotonic() + 121.0) == [1, 2, 3]
