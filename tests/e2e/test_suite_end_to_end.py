"""The suite end to end, as it runs in production: ingest, recognize and hotlist as processes on a private PostgreSQL.

Two cameras push rendered video of eight vehicle passes (each plate moving across five frames) over PushFrames;
three of the plates are hotlisted. An alert subscriber disconnects after its first alert and resumes from its saved
cursor once hotlist raised an alert it has not seen. After the system is quiet (every frame answered, ingest's spool
empty, no stored event changed for a while; see :mod:`testkit.faults.scenarios`), the stored events must be exactly
one per vehicle with its plate and nothing else, the subscriber must hold exactly the three alerts, each once, and an
acknowledgement must read back from the alert stream.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from anpr.api.hotlist.v1 import alert_pb2, hotlist_service_pb2
from testkit.faults.alerts import AlertSubscriber
from testkit.faults.load import Fleet, Ledger, LoadShape, plan
from testkit.faults.report import build_report, count_alerts, spool_counts, stored_events
from testkit.faults.scenarios import (
    METADATA,
    FaultEnvironment,
    alerts_settled,
    fault_environment,
    hotlist_plates,
    mark_readable,
    register_cameras,
    settle,
)
from testkit.polling import wait_until, wait_until_async

VEHICLES = 8
HOTLISTED = 3
# 2 cameras x 4 passes: a pass is 5 frames and 3 empty ones at 2 frames/s (4 s); the last pass starts at 12 s < 13 s.
SHAPE = LoadShape(cameras=2, fps=2.0, frames_per_pass=5, gap_frames=3, seconds=13.0, hotlisted_every=2)
CAMERAS = ["e2e-cam-0", "e2e-cam-1"]

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
async def suite(tmp_path: Path) -> AsyncIterator[FaultEnvironment]:
    """The three services as processes and a private PostgreSQL; logs stay in ``tmp_path``."""
    async with fault_environment(tmp_path) as environment:
        yield environment


def vehicles() -> Ledger:
    """The run's frames and eight passes, of which exactly three are hotlisted (the plan hotlists every second)."""
    ledger = plan(CAMERAS, SHAPE)
    listed = [p for p in ledger.passes if p.hotlisted]
    for extra in listed[HOTLISTED:]:
        extra.hotlisted = False  # its plate stays off the list (and differs from every listed one in two places)
    return ledger


async def all_reads(database_url: str) -> list[tuple[str, str]]:
    """(camera, plate) of every stored event, whatever its camera."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT camera_id, plate FROM hotlist.reads")
    finally:
        await connection.close()
    return [(row["camera_id"], row["plate"]) for row in rows]


async def acknowledgement_update(
    environment: FaultEnvironment, after_cursor: str, alert_id: str
) -> hotlist_service_pb2.AlertUpdate:
    """The ACKNOWLEDGED update of ``alert_id`` on a stream that resumes after ``after_cursor``."""
    request = hotlist_service_pb2.SubscribeAlertsRequest(
        after_cursor=after_cursor, camera_ids=CAMERAS, include_updates=True
    )
    call = environment.hotlist.SubscribeAlerts(request, metadata=METADATA)
    try:
        async with asyncio.timeout(30):
            async for message in call:
                update = message.update
                if (
                    message.HasField("update")
                    and update.change == hotlist_service_pb2.ALERT_CHANGE_ACKNOWLEDGED
                    and update.alert.alert_id == alert_id
                ):
                    return update
    finally:
        call.cancel()
    raise AssertionError("the alert stream ended without the acknowledgement")


async def test_vehicles_make_one_event_each_and_hotlisted_ones_one_alert_each(suite: FaultEnvironment) -> None:
    ledger = await asyncio.to_thread(vehicles)
    passes = ledger.passes
    plates = {(p.camera_id, p.plate) for p in passes}
    listed = [p for p in passes if p.hotlisted]
    assert len(plates) == VEHICLES
    assert len(listed) == HOTLISTED
    await register_cameras(suite, CAMERAS)
    await hotlist_plates(suite, passes)
    await mark_readable(suite, passes)
    assert [p.plate for p in passes if not p.readable] == [], "the recogniser misreads rendered plates on its own"

    fleet = Fleet(ledger, suite.ingest, METADATA)
    subscriber = AlertSubscriber(suite.hotlist, METADATA, CAMERAS)
    subscriber.start()
    fleet.start(SHAPE)
    try:
        # Disconnect after the first alert; resume from the saved cursor once an alert it missed was raised.
        await wait_until(lambda: len(subscriber.received) >= 1, seconds=90)
        await subscriber.kill()
        seen_before_disconnect = len(subscriber.received)
        assert seen_before_disconnect < HOTLISTED

        async def missed_one() -> bool:
            return await count_alerts(suite.postgres.url) > seen_before_disconnect

        await wait_until_async(missed_one, seconds=90, interval=0.2)
        subscriber.start()
        await fleet.captured()
        await settle(suite, fleet, CAMERAS)
        await alerts_settled(suite, subscriber, CAMERAS)
    finally:
        await fleet.stop()
        await subscriber.kill()

    events = await stored_events(suite.postgres.url, CAMERAS)
    _, dead = await asyncio.to_thread(spool_counts, suite.cluster.spool_path, CAMERAS)
    report = build_report("end to end", ledger, SHAPE.frames_per_second, events, subscriber.received, dead, None, {})
    print(json.dumps(report.as_dict(), indent=2))  # for reading a failure

    # Every vehicle was captured and accepted; exactly one event per vehicle, with its plate; no other event at all.
    assert report.passes_sent == VEHICLES
    assert report.passes_accepted == VEHICLES
    assert Counter(await all_reads(suite.postgres.url)) == Counter(plates)
    assert (report.lost, report.duplicated, report.unfinished, report.dead_letters) == (0, 0, 0, 0)

    # Exactly the hotlisted vehicles alerted, each alert delivered once across the disconnect.
    assert subscriber.streams == 2  # the first subscription and the resumed one: no other reconnect
    assert subscriber.failure is None
    received_ids = [a.alert_id for a in subscriber.received]
    assert len(received_ids) == len(set(received_ids)) == HOTLISTED
    assert sorted((a.camera_id, a.plate) for a in subscriber.received) == sorted((p.camera_id, p.plate) for p in listed)
    assert await count_alerts(suite.postgres.url) == HOTLISTED
    assert (report.alerts_delivered, report.alerts_delivered_more_than_once, report.unexpected_alerts) == (
        HOTLISTED,
        0,
        0,
    )

    # An officer confirms the first alert; the stream reports the acknowledgement.
    first = subscriber.received[0]
    reply = await suite.hotlist.AcknowledgeAlert(
        hotlist_service_pb2.AcknowledgeAlertRequest(
            alert_id=first.alert_id, outcome=alert_pb2.ALERT_OUTCOME_CONFIRMED, note="vehicle stopped"
        ),
        metadata=METADATA,
    )
    assert reply.changed
    assert reply.alert.state == alert_pb2.ALERT_STATE_CONFIRMED
    update = await acknowledgement_update(suite, subscriber.cursor, first.alert_id)
    assert update.alert.state == alert_pb2.ALERT_STATE_CONFIRMED
    assert update.alert.acknowledgement.outcome == alert_pb2.ALERT_OUTCOME_CONFIRMED
    assert update.alert.acknowledgement.note == "vehicle stopped"
    assert update.alert.acknowledgement.acknowledged_by == "faults"
