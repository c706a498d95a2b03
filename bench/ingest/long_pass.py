"""A car parked in view: what one more frame costs the tracker, and what the pass holds, the longer it stays.

A camera that watches a parking bay, or a patrol car's dash-cam parked behind a car, reads the same plate in every
frame for as long as it stays: one pass. This feeds ``PassTracker`` one read per frame at 5 frames/s, each with its
own 6 KB crop (as recognize returns them), and at each checkpoint times one more frame (median of 50, ONE core)
and measures the memory the tracker holds (tracemalloc). It runs twice in one process: every read kept for the
vote (``max_reads_per_pass`` unbounded, as before 2026-12-07) and the shipped limit. The reference is the cost of
a frame of an ordinary pass (a car in view for 9 frames). The tracker runs on ingest's event loop under the lock all
cameras' frames share, so this cost is paid by every camera. Last, the same parked car with every read unsure
(confidence 0.3), and with its plate partly beyond the frame's edge (every read partial): how long after it arrived
its first event comes, with and without ``early_after_seconds``.

    taskset -c 1 .venv/bin/python bench/ingest/long_pass.py [--frames 6000] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import tracemalloc
from datetime import date
from pathlib import Path
from typing import Any

from anpr.ingest.tracking.model import Box, FrameReads, PlateRead
from anpr.ingest.tracking.tracker import PassTracker, TrackerConfig

FPS = 5.0
CROP_BYTES = 6_000
START = 1_700_000_000.0


def _frame(index: int, confidence: float = 0.9, crop: bool = True, hidden: int = 0) -> FrameReads:
    """Frame ``index`` of the parked car; its crop's bytes are its own, as each frame's crop is in the service.
    ``hidden``: the runs of characters the read misses (its text is then the plate's last six characters)."""
    data = bytes([index % 251]) * CROP_BYTES if crop else None
    text = "123456" if hidden else "CA123456"
    read = PlateRead(
        text, confidence, Box(600, 400, 120, 30), (confidence,) * len(text), crop=data, hidden_characters=hidden
    )
    return FrameReads("cam", f"f{index}", START + index / FPS, (read,))


def _one_more_frame_ms(tracker: PassTracker, index: int) -> float:
    """Median cost of one more frame of the pass (50 frames, each timed alone)."""
    times = []
    for k in range(50):
        frame = _frame(index + k)
        t = time.perf_counter()
        tracker.observe(frame)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def parked(frames: int, checkpoints: list[int], config: TrackerConfig) -> list[dict[str, float]]:
    """Per checkpoint: frames in the pass so far, ms for one more frame, MB the tracker holds."""
    tracker = PassTracker(config)
    rows = []
    tracemalloc.start()
    index = 0
    for checkpoint in checkpoints:
        while index < checkpoint:
            tracker.observe(_frame(index))
            index += 1
        ms = _one_more_frame_ms(tracker, index)
        index += 50
        held = tracemalloc.get_traced_memory()[0] / 1e6
        rows.append({"frames": float(index), "minutes": round(index / FPS / 60, 1), "ms_per_frame": ms, "mb": held})
    tracemalloc.stop()
    return rows


def first_event_seconds(frames: int, config: TrackerConfig, confidence: float = 0.3, hidden: int = 0) -> float | None:
    """Seconds from a parked car's first frame to its first event while it stays in view (None: no event until it
    leaves), every read as unsure as ``confidence`` (below the early event's confidence) and missing ``hidden``
    runs of characters."""
    tracker = PassTracker(config)
    for index in range(frames):
        if tracker.observe(_frame(index, confidence, crop=False, hidden=hidden)):
            return index / FPS
    return None


def ordinary_pass_ms(passes: int = 200) -> float:
    """Median cost of a frame of an ordinary pass (9 frames of a moving car, then it leaves)."""
    tracker = PassTracker(TrackerConfig())
    times = []
    for p in range(passes):
        for k in range(9):
            read = PlateRead("CA123456", 0.9, Box(60.0 * k, 400, 120, 30), (0.9,) * 8)
            frame = FrameReads("cam", f"p{p}-{k}", START + p * 10 + k / FPS, (read,))
            t = time.perf_counter()
            tracker.observe(frame)
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=6_000, help="length of the longest pass (6,000: 20 minutes)")
    parser.add_argument("--json", default="", help="also write the figures here")
    args = parser.parse_args()
    checkpoints = sorted({c for c in (100, 1_000, 3_000, args.frames) if c <= args.frames})
    shipped = TrackerConfig()
    report: dict[str, Any] = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {platform.node()}",
        "frames_per_second": FPS,
        "crop_bytes": CROP_BYTES,
        "ordinary_pass_ms_per_frame": ordinary_pass_ms(),
        "shipped_max_reads_per_pass": shipped.max_reads_per_pass,
        "every_read_kept": parked(args.frames, checkpoints, TrackerConfig(max_reads_per_pass=10**9)),
        "shipped": parked(args.frames, checkpoints, shipped),
        # A parked car whose reads are all unsure: before 2026-12-07 its first event came when it left.
        "unsure_first_event_seconds": {
            "no_time_rule": first_event_seconds(args.frames, TrackerConfig(early_after_seconds=float("inf"))),
            "shipped": first_event_seconds(args.frames, shipped),
            "shipped_early_after_seconds": shipped.early_after_seconds,
        },
        # Confident reads of a plate partly beyond the frame's edge: before 2026-12-07 (later) an early event never
        # came from partial reads, so its first event came when it left (no_time_rule gives that behaviour).
        "partial_first_event_seconds": {
            "no_time_rule": first_event_seconds(
                args.frames, TrackerConfig(early_after_seconds=float("inf")), confidence=0.95, hidden=1
            ),
            "shipped": first_event_seconds(args.frames, shipped, confidence=0.95, hidden=1),
        },
    }
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
