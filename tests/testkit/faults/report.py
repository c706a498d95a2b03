"""What a run did to the passes it sent: stored, lost, duplicated, dead-lettered, alerted, and how fast it recovered.

An event belongs to the pass of its camera whose capture times it overlaps (passes of one camera are separated by
empty frames, so at most one pass fits). Counted:

- *lost*: a pass ingest accepted a frame of (ACCEPTED or DUPLICATE) that the recogniser reads when nothing fails
  (the baseline) and for which the hotlist service stored no event;
- *duplicated*: a pass with more than one stored event;
- *unfinished*: a counted pass whose stored event never got past an early revision (ingest lost the pass's later
  frames, and the final event with them);
- *dead letters*: events of these cameras that ingest's spool set aside because hotlist refused them;
- *alerts*: expected for every counted hotlisted pass; delivered when the subscriber received a RAISED alert for it;
  delivered more than once when an alert id arrived twice or a pass raised two alerts;
- *recovery*: from the moment the faulty part was back (ready, or serving again) to the first event stored for a
  pass that ingest accepted a frame of after that moment.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from anpr.api.common.v1 import plate_event_pb2
from testkit.faults.alerts import ReceivedAlert
from testkit.faults.load import Ledger, Pass

_EPSILON = 0.01  # seconds: timestamps go through protobuf and PostgreSQL (microseconds)


@dataclass(frozen=True)
class StoredEvent:
    """A row of ``hotlist.reads`` (an event at its highest stored revision)."""

    event_id: str
    camera_id: str
    plate: str
    first_seen: float
    last_seen: float
    store_time: float
    final: bool  # the stored revision is the pass's FINAL one (not an early event whose pass never ended)


async def stored_events(database_url: str, camera_ids: list[str]) -> list[StoredEvent]:
    """The events hotlist stored for these cameras."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT event_id, camera_id, plate, first_seen, last_seen, store_time, event FROM hotlist.reads"
            " WHERE camera_id = ANY($1::text[])",
            camera_ids,
        )
    finally:
        await connection.close()
    return [
        StoredEvent(
            row["event_id"],
            row["camera_id"],
            row["plate"],
            _seconds(row["first_seen"]),
            _seconds(row["last_seen"]),
            _seconds(row["store_time"]),
            plate_event_pb2.PlateEvent.FromString(row["event"]).stage == plate_event_pb2.PLATE_EVENT_STAGE_FINAL,
        )
        for row in rows
    ]


async def count_alerts(database_url: str) -> int:
    """Alerts hotlist stored (the environment is the caller's own: every row is its run's)."""
    connection = await asyncpg.connect(database_url)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM hotlist.alerts"))
    finally:
        await connection.close()


def _seconds(moment: datetime) -> float:
    return moment.timestamp()


def spool_counts(spool_path: Path, camera_ids: list[str]) -> tuple[int, int]:
    """(events waiting, dead letters) of these cameras in ingest's spool file (read-only; ingest may be writing)."""
    if not spool_path.exists():
        return 0, 0
    wanted = set(camera_ids)
    connection = sqlite3.connect(f"file:{spool_path}?mode=ro", uri=True, timeout=10)
    try:
        counts = []
        for table in ("spool", "dead_letter"):
            payloads = connection.execute(f"SELECT payload FROM {table}").fetchall()
            counts.append(sum(plate_event_pb2.PlateEvent.FromString(p[0]).camera_id in wanted for p in payloads))
    finally:
        connection.close()
    return counts[0], counts[1]


@dataclass
class Report:
    """One scenario's numbers (see the module docstring)."""

    scenario: str
    cameras: int
    frames_per_second: float  # offered, all cameras
    frames_captured: int
    frames_accepted: int
    answers: dict[str, int]  # answers by status (resent frames count each time)
    reconnects: int
    passes_sent: int
    passes_accepted: int
    passes_unreadable: int  # accepted passes the baseline misreads (not counted below)
    events_stored: int
    lost: int
    duplicated: int
    unfinished: int  # counted passes whose only stored event is an early one: the frames after it were lost
    unmatched_events: int  # stored events that overlap no pass of their camera
    misread_events: int  # events whose plate is not the pass's plate
    dead_letters: int
    alerts_expected: int
    alerts_delivered: int
    alerts_delivered_more_than_once: int
    unexpected_alerts: int  # alerts for passes that are not hotlisted
    recovery_seconds: float | None  # None: no fault, or nothing stored after it
    fault: dict[str, Any]  # what the fault did and when (scenario specific)
    lost_passes: list[str]  # "camera plate" of each lost pass, for reading a failure
    alert_problems: list[str]  # passes whose alert is missing or came more than once, alert ids sent twice

    @property
    def alerts_missing(self) -> int:
        """Expected alerts that never arrived."""
        return self.alerts_expected - self.alerts_delivered

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {**asdict(self), "alerts_missing": self.alerts_missing}


def _overlaps(vehicle: Pass, first: float, last: float) -> bool:
    return first <= vehicle.last_capture + _EPSILON and last >= vehicle.first_capture - _EPSILON


def _pass_of(passes: list[Pass], camera_id: str, first: float, last: float) -> Pass | None:
    for vehicle in passes:
        if vehicle.camera_id == camera_id and vehicle.frames[0].capture_time and _overlaps(vehicle, first, last):
            return vehicle
    return None


def build_report(
    scenario: str,
    ledger: Ledger,
    frames_per_second: float,
    events: list[StoredEvent],
    alerts: list[ReceivedAlert],
    dead_letters: int,
    back_at: float | None,
    fault: dict[str, Any],
) -> Report:
    """Compare what was sent with what was stored and alerted."""
    sent = [p for p in ledger.passes if p.frames[0].capture_time]
    accepted = [p for p in sent if p.accepted]
    counted = [p for p in accepted if p.readable]
    events_of: dict[int, list[StoredEvent]] = {id(p): [] for p in sent}
    unmatched = misread = 0
    for event in events:
        vehicle = _pass_of(sent, event.camera_id, event.first_seen, event.last_seen)
        if vehicle is None:
            unmatched += 1
            continue
        events_of[id(vehicle)].append(event)
        misread += event.plate != vehicle.plate
    lost = [p for p in counted if not events_of[id(p)]]
    alerts_of: dict[int, set[str]] = {id(p): set() for p in sent}
    unexpected = 0
    for alert in alerts:
        vehicle = _pass_of(sent, alert.camera_id, alert.first_seen, alert.last_seen)
        if vehicle is None or not vehicle.hotlisted:
            unexpected += 1
        else:
            alerts_of[id(vehicle)].add(alert.alert_id)
    repeats = Counter(a.alert_id for a in alerts)
    expected = [p for p in counted if p.hotlisted]
    delivered = [p for p in expected if alerts_of[id(p)]]
    more_than_once = sum(count > 1 for count in repeats.values()) + sum(len(alerts_of[id(p)]) > 1 for p in expected)
    problems = [f"alert {alert_id} received {count} times" for alert_id, count in repeats.items() if count > 1]
    problems += [
        f"{p.camera_id} {p.plate} [{p.first_capture:.2f}, {p.last_capture:.2f}]: alerts {sorted(alerts_of[id(p)])}"
        for p in expected
        if len(alerts_of[id(p)]) != 1
    ]
    problems += [
        f"unexpected alert {a.alert_id}: {a.camera_id} {a.plate} [{a.first_seen:.2f}, {a.last_seen:.2f}]"
        for a in alerts
        if (vehicle := _pass_of(sent, a.camera_id, a.first_seen, a.last_seen)) is None or not vehicle.hotlisted
    ]
    return Report(
        scenario=scenario,
        cameras=len(ledger.frames),
        frames_per_second=frames_per_second,
        frames_captured=len(ledger.captured),
        frames_accepted=sum(f.accepted_at is not None for f in ledger.captured),
        answers=dict(ledger.answers()),
        reconnects=ledger.reconnects,
        passes_sent=len(sent),
        passes_accepted=len(accepted),
        passes_unreadable=len(accepted) - len(counted),
        events_stored=len(events),
        lost=len(lost),
        duplicated=sum(len(events_of[id(p)]) > 1 for p in sent),
        unfinished=sum(bool(events_of[id(p)]) and not any(e.final for e in events_of[id(p)]) for p in counted),
        unmatched_events=unmatched,
        misread_events=misread,
        dead_letters=dead_letters,
        alerts_expected=len(expected),
        alerts_delivered=len(delivered),
        alerts_delivered_more_than_once=more_than_once,
        unexpected_alerts=unexpected,
        recovery_seconds=_recovery(sent, events_of, back_at),
        fault=fault,
        lost_passes=[f"{p.camera_id} {p.plate}" for p in lost],
        alert_problems=problems,
    )


def _recovery(sent: list[Pass], events_of: dict[int, list[StoredEvent]], back_at: float | None) -> float | None:
    if back_at is None:
        return None
    stored = [
        event.store_time
        for vehicle in sent
        if any(f.accepted_at is not None and f.accepted_at >= back_at for f in vehicle.frames)
        for event in events_of[id(vehicle)]
        if event.store_time >= back_at
    ]
    return round(min(stored) - back_at, 2) if stored else None
