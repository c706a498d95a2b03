"""Fault injection, long runs: every scenario of issue 18 under a steady load of 20 cameras.

Each scenario runs in a fresh environment (a private PostgreSQL and the three services as processes, see
``tests/testkit/faults``): cameras push 5-frame vehicle passes (rendered plates, every second pass hotlisted) over
PushFrames, a fault is injected ``--fault-at`` seconds in, and once the system is quiet the ledger of accepted frames
is compared with the events hotlist stored and the alerts a SubscribeAlerts subscriber received.

Overload: the pipeline's capacity is measured first (frames/s recognised while every camera sends as fast as ingest
lets it), then the cameras offer twice that.

    python bench/faults/run.py                                  # everything, this working tree
    python bench/faults/run.py --code /tmp/before --label before  # the services of another checkout
    python bench/faults/run.py --scenario "kill -9 ingest" --scenario "no fault"
    python bench/faults/run.py --table bench/results/faults_2026-12-06.json   # the markdown table again

Writes ``bench/results/faults_<date>[_<label>].json`` and prints the table that ``docs/reliability.md`` shows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import signal
import sys
import tempfile
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # the harness lives with the tests' helpers

from testkit.faults.load import LoadShape  # noqa: E402
from testkit.faults.scenarios import FAULTS, FaultContext, fault_environment, run_scenario  # noqa: E402
from testkit.ingest_env import metric_value  # noqa: E402

OVERLOAD = "overload at 2x capacity"
COLUMNS = (
    ("scenario", "scenario"),
    ("frames/s", "frames_per_second"),
    ("passes sent", "passes_sent"),
    ("accepted", "passes_accepted"),
    ("events stored", "events_stored"),
    ("lost", "lost"),
    ("duplicated", "duplicated"),
    ("unfinished", "unfinished"),
    ("dead letters", "dead_letters"),
    ("alerts expected", "alerts_expected"),
    ("delivered", "alerts_delivered"),
    ("delivered >1", "alerts_delivered_more_than_once"),
    ("recovery s", "recovery_seconds"),
)


async def measure_capacity(shape: LoadShape, code: Path | None, seconds: float = 20.0) -> float:
    """Frames/s recognised while the cameras offer far more than the pipeline takes (ingest throttles the rest)."""
    with tempfile.TemporaryDirectory(prefix="anpr-faults-") as directory:
        async with fault_environment(Path(directory), code) as environment:
            recognize = environment.cluster.recognize
            flood = LoadShape(cameras=shape.cameras, fps=6.0, seconds=seconds + 5)
            sample = 'anpr_recognize_images_total{rpc="Recognize"}'
            readings: list[tuple[float, float]] = []

            async def sample_after(delay: float) -> None:
                await asyncio.sleep(delay)
                readings.append((time.monotonic(), metric_value(await recognize.metrics(), sample)))

            async def probe(_: FaultContext) -> None:
                await sample_after(5.0)  # past the start, when every camera is sending
                await sample_after(seconds)

            await run_scenario(environment, "capacity", flood, fault_at=0.0, fault=probe)
    (start, first), (end, last) = readings
    return round((last - first) / (end - start), 1)


async def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Every requested scenario in a fresh environment each; the results as a JSON document."""
    shape = LoadShape(cameras=args.cameras, fps=args.fps, seconds=args.seconds)
    code: Path | None = args.code
    results: list[dict[str, Any]] = []
    capacity = None
    for name in args.scenario or [*FAULTS, OVERLOAD]:
        run_shape, fault = shape, name
        if name == OVERLOAD:
            capacity = capacity or await measure_capacity(shape, code)
            fps = 2 * capacity / shape.cameras
            # Passes stay apart by more than ingest's 1.5 s track timeout at any rate, as real vehicles do.
            gap = max(shape.gap_frames, math.ceil(2.0 * fps))
            run_shape = LoadShape(cameras=shape.cameras, fps=fps, gap_frames=gap, seconds=shape.seconds)
            fault = "no fault"
        began = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="anpr-faults-") as directory:
            async with fault_environment(Path(directory), code) as environment:
                report = await run_scenario(environment, fault, run_shape, fault_at=args.fault_at)
        result = {**report.as_dict(), "scenario": name, "wall_seconds": round(time.monotonic() - began, 1)}
        if name == OVERLOAD:
            result["capacity_frames_per_second"] = capacity
        results.append(result)
        print(json.dumps({k: result[k] for k in (key for _, key in COLUMNS)}), flush=True)
        if args.partial:  # what is done survives a crash of a later scenario
            args.partial.write_text(json.dumps({"scenarios": results}, indent=2) + "\n")
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()}: {os.cpu_count()} CPUs, {platform.machine()}, {platform.python_version()}",
        "code": str(code) if code else "working tree",
        "load": {
            "cameras": shape.cameras,
            "fps_per_camera": shape.fps,
            "frames_per_pass": shape.frames_per_pass,
            "gap_frames": shape.gap_frames,
            "seconds": shape.seconds,
            "fault_at_seconds": args.fault_at,
        },
        "capacity_frames_per_second": capacity,
        "scenarios": results,
    }


async def _cancelled_by_sigterm(work: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    # Without this a SIGTERM ends the bench at once and leaves its services and database running.
    task = asyncio.ensure_future(work)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await task


def table(document: dict[str, Any]) -> str:
    """The markdown table of a results document."""
    lines = ["| " + " | ".join(title for title, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for result in document["scenarios"]:
        cells = []
        for _, key in COLUMNS:
            value = result.get(key)
            cells.append("-" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=20)
    parser.add_argument("--fps", type=float, default=0.8, help="frames/s per camera (default 16 frames/s in all)")
    parser.add_argument("--seconds", type=float, default=40.0, help="how long the cameras capture")
    parser.add_argument("--fault-at", type=float, default=10.0, help="seconds into the load")
    parser.add_argument("--scenario", action="append", choices=[*FAULTS, OVERLOAD], help="repeatable; default all")
    parser.add_argument("--code", type=Path, help="a checkout whose services run instead of this working tree's")
    parser.add_argument("--label", help="suffix of the results file, for example before")
    parser.add_argument("--out", type=Path, help="results file (default bench/results/faults_<date>[_<label>].json)")
    parser.add_argument("--table", type=Path, help="only print the markdown table of an existing results file")
    args = parser.parse_args()
    if args.code:
        args.code = args.code.resolve()
    if args.table:
        print(table(json.loads(args.table.read_text())))
        return
    day = datetime.now(UTC).date().isoformat()
    out = args.out or ROOT / "bench" / "results" / f"faults_{day}{'_' + args.label if args.label else ''}.json"
    args.partial = out.with_suffix(".partial.json")
    document = asyncio.run(_cancelled_by_sigterm(run_all(args)))
    args.partial.unlink(missing_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\n{document['date']}, {document['machine']}, code: {document['code']}, written to {out}\n")
    print(table(document))


if __name__ == "__main__":
    main()
