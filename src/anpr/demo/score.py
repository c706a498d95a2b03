"""What the suite emitted during the demo, measured against the vehicle passes the demo generated.

An event belongs to the pass of its camera whose frames' capture times overlap the event's first and last seen
times. Per pass the first such event with the pass's plate is correct; an event with another text, a second event
for the same pass, or one that overlaps no pass is junk. Capture-to-alert latency runs from the capture of the
pass's first frame to the moment the demo's subscriber received the alert; alerts from the body-worn recording
count as correct or not like the others but stay out of the latency (their frames were captured before the upload).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anpr.demo.fleet import VehiclePass

SLACK_SECONDS = 0.05  # capture times are compared after a round trip through protobuf timestamps


@dataclass
class SeenEvent:
    """The latest revision of one plate event the demo saw."""

    event_id: str
    camera_id: str
    plate: str
    first_seen: float
    last_seen: float


@dataclass
class SeenAlert:
    """One alert the demo's subscriber received."""

    alert_id: str
    camera_id: str
    plate: str
    first_seen: float
    received: float


@dataclass
class Summary:
    """The demo's measurements."""

    vehicle_passes: int = 0
    events: int = 0
    correct_events: int = 0
    junk_events: int = 0
    missed_passes: int = 0
    alerts_expected: int = 0
    alerts_raised: int = 0
    alerts_correct: int = 0
    latencies: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready values (latencies in seconds, None without alerts)."""
        return {
            "vehicle_passes": self.vehicle_passes,
            "events": self.events,
            "correct_events": self.correct_events,
            "junk_events": self.junk_events,
            "missed_passes": self.missed_passes,
            "alerts_expected": self.alerts_expected,
            "alerts_raised": self.alerts_raised,
            "alerts_correct": self.alerts_correct,
            "capture_to_alert_p50_seconds": _percentile(self.latencies, 50),
            "capture_to_alert_p99_seconds": _percentile(self.latencies, 99),
        }


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def pass_of(passes: list[VehiclePass], camera_id: str, first_seen: float, last_seen: float) -> VehiclePass | None:
    """The pass of ``camera_id`` whose frames overlap the time span, if any."""
    for vehicle in passes:
        if vehicle.camera_id != camera_id or not vehicle.frames_sent:
            continue
        if first_seen <= vehicle.last_capture + SLACK_SECONDS and last_seen >= vehicle.first_capture - SLACK_SECONDS:
            return vehicle
    return None


def score(passes: list[VehiclePass], events: list[SeenEvent], alerts: list[SeenAlert]) -> Summary:
    """Compare what was seen with the ground truth (only complete passes count as passes)."""
    complete = [p for p in passes if p.complete]
    summary = Summary(vehicle_passes=len(complete), events=len(events))
    matched: set[int] = set()
    for event in sorted(events, key=lambda e: e.first_seen):
        vehicle = pass_of(passes, event.camera_id, event.first_seen, event.last_seen)
        if vehicle is not None and event.plate == vehicle.plate and id(vehicle) not in matched:
            matched.add(id(vehicle))
            summary.correct_events += 1
        else:
            summary.junk_events += 1
    summary.missed_passes = sum(1 for p in complete if id(p) not in matched)
    summary.alerts_expected = sum(1 for p in complete if p.hotlisted)
    summary.alerts_raised = len(alerts)
    for alert in alerts:
        vehicle = pass_of(passes, alert.camera_id, alert.first_seen, alert.first_seen)
        if vehicle is not None and vehicle.hotlisted and vehicle.plate == alert.plate:
            summary.alerts_correct += 1
            if not vehicle.recorded:
                summary.latencies.append(alert.received - vehicle.first_capture)
    return summary
