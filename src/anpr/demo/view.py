"""What the demo shows: a live terminal view (rich) or, with ``--json``, one JSON object per line.

The live view has the fleet (per-camera frame rate, frames, vehicles, position; for the body-worn camera the state
of its recording and upload), the latest plate events (marked against the ground truth, and marked ``rec`` with the
offset when read from the uploaded recording) and the latest alerts with their priority and acknowledgement. JSON
lines carry ``"kind": "event"``, ``"alert"`` (raised or acknowledged), ``"upload"`` (the body-worn recording) and,
last, ``"summary"``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from anpr.demo.fleet import DemoCamera

SHOWN_EVENTS = 12
SHOWN_ALERTS = 8
RATE_WINDOW_SECONDS = 3.0


@dataclass
class CameraStats:
    """Frames one camera sent, for its frame rate over the last seconds."""

    camera: DemoCamera
    frames: int = 0
    passes: int = 0
    position: tuple[float, float] | None = None
    upload: str | None = None  # body-worn: recording, uploading, or what the upload did
    recent: deque[float] = field(default_factory=deque)

    def sent(self, at: float) -> None:
        """One frame was accepted."""
        self.frames += 1
        self.recent.append(at)
        while self.recent and self.recent[0] < at - RATE_WINDOW_SECONDS:
            self.recent.popleft()

    def rate(self, now: float) -> float:
        """Frames per second over the last seconds."""
        return sum(1 for t in self.recent if t >= now - RATE_WINDOW_SECONDS) / RATE_WINDOW_SECONDS


class DemoView:
    """The live view, or JSON lines on stdout with ``as_json`` (progress then goes to stderr)."""

    def __init__(self, cameras: list[DemoCamera], as_json: bool, duration: float | None) -> None:
        self.as_json = as_json
        self.console = Console(stderr=as_json)
        self.stats = {camera.camera_id: CameraStats(camera) for camera in cameras}
        self.events: deque[tuple[str, ...]] = deque(maxlen=SHOWN_EVENTS)
        self.alerts: dict[str, tuple[str, ...]] = {}
        self.duration = duration
        self.started = time.monotonic()
        self.status = "starting"
        self._live: Live | None = None
        self.on_log: Callable[[str], None] | None = None  # progress while the suite starts
        self.log_task: asyncio.Task[None] | None = None

    def __enter__(self) -> DemoView:
        if not self.as_json:
            self._live = Live(get_renderable=self.render, console=self.console, refresh_per_second=4)
            self._live.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def line(self, document: dict[str, Any]) -> None:
        """One JSON line on stdout (only with ``--json``)."""
        if self.as_json:
            print(json.dumps(document), flush=True)

    def event(self, document: dict[str, Any], verdict: str) -> None:
        """A plate event (a new one or a new revision); ``verdict`` is how it compares with the ground truth."""
        self.line({"kind": "event", **document, "ground_truth": verdict})
        mark = {"correct": "[green]✓[/]", "junk": "[red]✗ junk[/]", "pending": "[dim]…[/]"}.get(verdict, verdict)
        self.events.appendleft(
            (
                time.strftime("%H:%M:%S"),
                document["camera_id"],
                f"[bold]{document['plate']}[/]",
                document["stage"].lower()
                + (
                    f" [magenta]rec +{document['recording']['offset_ms'] / 1000:.1f} s[/]"
                    if document.get("recording")
                    else ""
                ),
                f"{document['confidence']:.2f}",
                document["location"] or "",
                mark,
            )
        )

    def upload(self, document: dict[str, Any]) -> None:
        """The body-worn recording was uploaded."""
        self.line({"kind": "upload", **document})
        stats = self.stats[document["camera_id"]]
        stats.upload = (
            f"uploaded {document['bytes_received'] / 1e6:.1f} MB, {document['frames_sampled']} frames sampled"
            + (f", {document['frames_rejected']} refused" if document["frames_rejected"] else "")
        )

    def alert(self, document: dict[str, Any]) -> None:
        """An alert raised or acknowledged."""
        self.line({"kind": "alert", **document})
        priority = int(document["priority"])
        colour = "red" if priority >= 70 else "yellow"
        state = document["state"].lower()
        acknowledged = f"{state} by {document['acknowledged_by']}" if document.get("acknowledged_by") else state
        self.alerts[document["alert_id"]] = (
            time.strftime("%H:%M:%S"),
            f"[{colour}]{priority}[/]",
            document["hotlist"],
            f"[bold]{document['plate']}[/]",
            document["camera_id"],
            document["action"].lower().replace("_", " "),
            acknowledged,
        )
        while len(self.alerts) > SHOWN_ALERTS:
            del self.alerts[next(iter(self.alerts))]

    def render(self) -> RenderableType:
        """The whole view."""
        now = time.monotonic()
        elapsed = now - self.started
        left = f", {max(0.0, self.duration - elapsed):.0f} s left" if self.duration else ", Ctrl-C stops it"
        header = Text.from_markup(f"[bold]anpr demo[/] — {self.status} ({elapsed:.0f} s{left})")
        fleet = Table(title="Fleet", expand=True)
        for column in ("camera", "kind", "name", "frames/s", "frames", "vehicles", "GPS"):
            fleet.add_column(column)
        for stats in self.stats.values():
            where = f"{stats.position[0]:.5f}, {stats.position[1]:.5f}" if stats.position else "fixed"
            camera = stats.camera
            fleet.add_row(
                camera.camera_id,
                f"{camera.kind_name} (crops)" if camera.sends_crops else camera.kind_name,
                camera.display_name,
                stats.upload if stats.upload is not None else f"{stats.rate(now):.1f}",
                str(stats.frames),
                str(stats.passes),
                where,
            )
        events = Table(title="Plate events (synthetic plates)", expand=True)
        for column in ("time", "camera", "plate", "stage", "conf.", "GPS", "truth"):
            events.add_column(column)
        for row in self.events:
            events.add_row(*row)
        alerts = Table(title="Alerts", expand=True)
        for column in ("time", "priority", "hotlist", "plate", "camera", "action", "state"):
            alerts.add_column(column)
        for row in reversed(self.alerts.values()):
            alerts.add_row(*row)
        return Group(header, fleet, events, alerts)

    def summary(self, document: dict[str, Any]) -> None:
        """The final measurements."""
        if self.as_json:
            self.line({"kind": "summary", **document})
            return
        table = Table(title="Measured against the generated ground truth")
        table.add_column("measure")
        table.add_column("value", justify="right")
        for key, value in document.items():
            table.add_row(key.replace("_", " "), "-" if value is None else str(value))
        self.console.print(table)
