"""Ingest's own event table (GetPlateEvents) catches up after its PostgreSQL was unreachable.

Ingest runs on a private cluster that the test stops and starts (never the machine's shared server); the hotlist
service stays on the test's database, so delivery goes on meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest

from anpr.api.common.v1 import plate_event_pb2
from anpr.api.ingest.v1 import event_pb2, ingest_service_pb2
from testkit.faults.postgres import PrivatePostgres
from testkit.frames import frame
from testkit.ingest_env import PURPOSE, IngestEnvironment, fixed_camera, metric_value, register, stub
from testkit.passes import PassScript
from testkit.polling import wait_until_async
from testkit.scrape import fetch_text


@pytest.fixture
async def private_postgres() -> AsyncIterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    cluster.create()
    await cluster.start_async()
    try:
        yield cluster
    finally:
        cluster.destroy()


async def test_event_table_catches_up_after_a_database_outage(
    env: IngestEnvironment, private_postgres: PrivatePostgres
) -> None:
    script = PassScript()
    script.add_pass("CA111111", 1, 8)
    start = time.time() - 10
    requests = [
        ingest_service_pb2.PushFramesRequest(frame=frame("cam-1", f"cam-1-{n}", script.image(n), at=start + n / 10))
        for n in range(14)
    ]
    camera = env.metadata("camera")
    async with (
        env.run_ingest(
            database_url=private_postgres.url, track_max_missed_frames="3", store_backoff_max_seconds="0.5"
        ) as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        ingest = stub(channel)
        await register(ingest, env, fixed_camera("cam-1"))
        assert len([r async for r in ingest.PushFrames(iter(requests[:1]), metadata=camera)]) == 1

        await private_postgres.stop_async()
        assert len([r async for r in ingest.PushFrames(iter(requests[1:]), metadata=camera)]) == 13
        # Delivery does not wait for the database: the hotlist service has the pass, early and final.
        await env.wait_for_revisions({"CA111111": 2}, seconds=30)
        with pytest.raises(grpc.aio.AioRpcError):
            await ingest.GetPlateEvents(
                ingest_service_pb2.GetPlateEventsRequest(purpose=PURPOSE), metadata=env.metadata("operator")
            )
        scraped = await fetch_text(f"http://127.0.0.1:{server.metrics_port}/metrics")
        assert metric_value(scraped, "anpr_ingest_store_backlog") >= 2  # both revisions owed, on disk

        await private_postgres.start_async()

        records: list[event_pb2.PlateEventRecord] = []

        async def caught_up() -> bool:
            nonlocal records
            try:
                reply = await ingest.GetPlateEvents(
                    ingest_service_pb2.GetPlateEventsRequest(purpose=PURPOSE), metadata=env.metadata("operator")
                )
            except grpc.aio.AioRpcError:
                return False
            records = list(reply.events)
            return bool(records) and all(r.delivery_state == event_pb2.DELIVERY_STATE_DELIVERED for r in records)

        await wait_until_async(caught_up, seconds=30)
        assert [(r.event.reading.text, r.event.revision) for r in records] == [("CA111111", 2)]
        assert records[0].event.stage == plate_event_pb2.PLATE_EVENT_STAGE_FINAL
        scraped = await fetch_text(f"http://127.0.0.1:{server.metrics_port}/metrics")
        assert metric_value(scraped, "anpr_ingest_store_backlog") == 0
