"""Short fault-injection scenarios (issue 18): whatever fails, nothing accepted is lost or duplicated.

Four cameras push 5-frame vehicle passes at 2 frames/s each (every second pass hotlisted) while a fault is
injected; the run then waits until the system is quiet and compares the ledger of accepted frames with what the
hotlist service stored and alerted. Targets: 0 lost (passes the recogniser reads when nothing fails), 0 duplicated,
0 dead letters, every expected alert delivered exactly once, and every pass's event final (an early event whose
pass never ended means ingest lost the frames after it). Recovery time is measured by ``bench/faults`` (speed
targets do not belong in tests). The full report is printed, for reading a failure.
"""

from __future__ import annotations

import json

import pytest

from testkit.faults.load import LoadShape
from testkit.faults.report import Report
from testkit.faults.scenarios import FaultEnvironment, run_scenario

SHAPE = LoadShape(cameras=4, fps=2.0, frames_per_pass=5, gap_frames=3, seconds=16.0)

pytestmark = pytest.mark.timeout(180)


def assert_nothing_lost(report: Report) -> None:
    """The targets of every scenario."""
    print(json.dumps(report.as_dict(), indent=2))
    assert report.passes_accepted > 0, "ingest accepted no pass at all"
    assert report.events_stored > 0, "hotlist stored no event at all"
    assert report.alerts_expected > 0, "no hotlisted pass was accepted: the scenario checks no alert"
    outcome = {
        "lost": report.lost,
        "duplicated": report.duplicated,
        "unfinished": report.unfinished,
        "dead_letters": report.dead_letters,
        "alerts_missing": report.alerts_missing,
        "alerts_delivered_more_than_once": report.alerts_delivered_more_than_once,
        "unexpected_alerts": report.unexpected_alerts,
    }
    assert outcome == dict.fromkeys(outcome, 0), f"lost: {report.lost_passes}; alerts: {report.alert_problems}"


async def test_no_fault(faults: FaultEnvironment) -> None:
    assert_nothing_lost(await run_scenario(faults, "no fault", SHAPE))


async def test_kill_9_ingest(faults: FaultEnvironment) -> None:
    assert_nothing_lost(await run_scenario(faults, "kill -9 ingest", SHAPE, fault_at=6.0))


async def test_sigterm_ingest(faults: FaultEnvironment) -> None:
    assert_nothing_lost(await run_scenario(faults, "SIGTERM ingest", SHAPE, fault_at=6.0))


async def test_recognize_down_5_s(faults: FaultEnvironment) -> None:
    assert_nothing_lost(await run_scenario(faults, "recognize down 5 s", SHAPE, fault_at=4.0))


async def test_postgresql_stopped_15_s(faults: FaultEnvironment) -> None:
    shape = LoadShape(cameras=4, fps=2.0, frames_per_pass=5, gap_frames=3, seconds=24.0)
    assert_nothing_lost(await run_scenario(faults, "PostgreSQL stopped 15 s", shape, fault_at=3.0))
