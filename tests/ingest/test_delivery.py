"""Durable delivery to the real hotlist service: outages, restarts of either service, order, duplicates."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import grpc.aio

from anpr.api.common.v1 import plate_event_pb2
from anpr.api.ingest.v1 import event_pb2, ingest_service_pb2, ingest_service_pb2_grpc
from anpr.ingest.channels import open_channel
from anpr.ingest.delivery import Delivery
from anpr.ingest.spool import Spool
from testkit.frames import frame
from testkit.hotlist import plate_event
from testkit.ingest_env import PURPOSE, IngestEnvironment, bearer, fixed_camera, metric_value, register, stub
from testkit.passes import PassScript
from testkit.polling import wait_until_async
from testkit.scrape import fetch_text


def numbered_events(count: int) -> list[plate_event_pb2.PlateEvent]:
    seen = datetime.now(UTC) - timedelta(minutes=5)
    return [
        plate_event(
            f"CA{index:06d}", event_id=f"00000000-0000-4000-8000-{index:012d}", seen=seen + timedelta(seconds=index)
        )
        for index in range(count)
    ]


async def spool_depth(path: Path) -> int:
    spool = Spool(path)
    await spool.open()
    try:
        return await spool.depth()
    finally:
        await spool.close()


async def test_spool_delivers_everything_in_order_across_a_hotlist_outage(
    env: IngestEnvironment, tmp_path: Path
) -> None:
    await env.start_dependencies()
    spool = Spool(tmp_path / "spool.sqlite3")
    await spool.open()
    channel = open_channel(env.hotlist_target, "anpr.hotlist.v1.HotlistService", 4 * 1024 * 1024)
    delivery = Delivery(
        spool,
        channel,
        bearer(env.tokens["ingest-service"]),
        batch_size=7,
        backoff_initial_seconds=0.05,
        backoff_max_seconds=0.2,
    )
    runner = asyncio.create_task(delivery.run())

    async def drained() -> bool:
        return await spool.depth() == 0

    try:
        sent = numbered_events(40)
        await delivery.submit(sent[:10])
        await env.wait_for_count(10)
        await wait_until_async(drained)
        await env.stop_hotlist()  # the hotlist service goes away mid-stream ...
        for start in range(10, 40, 5):
            await delivery.submit(sent[start : start + 5])
        assert await spool.depth() == 30  # ... everything since waits on disk
        assert len(await env.reads()) == 10
        await env.start_hotlist()  # ... and it comes back on the same address
        reads = await env.wait_for_count(40)
        await wait_until_async(drained)
        # Each ReportReads batch is one transaction (its events share a store time, and the hotlist service
        # applies them by event id); the batches were stored in spool order.
        assert [r.event_id for r in reads] == [e.event_id for e in sent]
        assert [r.plate for r in reads] == [e.reading.text for e in sent]
        assert {r.revision for r in reads} == {1}
        assert len({r.store_time for r in reads}) >= 2 + 30 // 7  # first batch(es), then at least 5 after the outage
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await channel.close(None)
        await spool.close()


async def pending_records(
    ingest: ingest_service_pb2_grpc.IngestServiceAsyncStub, env: IngestEnvironment
) -> list[event_pb2.PlateEventRecord]:
    reply = await ingest.GetPlateEvents(
        ingest_service_pb2.GetPlateEventsRequest(delivery_states=[event_pb2.DELIVERY_STATE_PENDING], purpose=PURPOSE),
        metadata=env.metadata("operator"),
    )
    return list(reply.events)


def pass_requests(script: PassScript, count: int, start: float) -> list[ingest_service_pb2.PushFramesRequest]:
    return [
        ingest_service_pb2.PushFramesRequest(frame=frame("cam-1", f"cam-1-{n}", script.image(n), at=start + n / 10))
        for n in range(count)
    ]


async def test_ingest_restarted_with_a_full_spool_replays_it_in_order(env: IngestEnvironment) -> None:
    # Ingest emits events while the hotlist service is down, is restarted, and only then the hotlist returns.
    await env.start_dependencies()
    await env.stop_hotlist()
    script = PassScript()
    script.add_pass("CA111111", 0, 7)
    script.add_pass("CA222222", 12, 19)
    start = time.time() - 10
    async with env.run_ingest(track_max_missed_frames="3") as server, grpc.aio.insecure_channel(server.address) as ch:
        ingest = stub(ch)
        await register(ingest, env, fixed_camera("cam-1"))
        requests = pass_requests(script, 24, start)
        acks = [r.ack async for r in ingest.PushFrames(iter(requests), metadata=env.metadata("camera"))]
        assert len(acks) == 24

        async def both_final() -> bool:
            records = await pending_records(ingest, env)
            final = plate_event_pb2.PLATE_EVENT_STAGE_FINAL
            return len(records) == 2 and all(r.event.stage == final for r in records)

        await wait_until_async(both_final)
    assert await env.reads() == []
    assert await spool_depth(env.spool_path) == 4  # early + final of each pass, none delivered

    await env.start_hotlist()
    # One event per ReportReads call, so the order of arrival shows in the store and update times.
    async with env.run_ingest(delivery_batch_size="1") as server, grpc.aio.insecure_channel(server.address) as ch:
        reads = await env.wait_for_revisions({"CA111111": 2, "CA222222": 2})

        async def all_delivered() -> bool:
            return not await pending_records(stub(ch), env)

        await wait_until_async(all_delivered)
    assert [(r.plate, r.revision) for r in reads] == [("CA111111", 2), ("CA222222", 2)]
    assert all(r.event.stage == plate_event_pb2.PLATE_EVENT_STAGE_FINAL for r in reads)
    # In order: each pass's revision 1 (stored) before its revision 2 (an update), the first pass before the second.
    first, second = reads
    assert first.store_time < first.update_time < second.store_time < second.update_time
    assert await spool_depth(env.spool_path) == 0


async def hotlist_duplicates(env: IngestEnvironment) -> float:
    scraped = await fetch_text(f"http://127.0.0.1:{env.hotlist.metrics_port}/metrics")
    return metric_value(scraped, 'anpr_hotlist_reads_total{status="duplicate"}')


async def test_replayed_frames_give_the_same_event_ids(env: IngestEnvironment) -> None:
    # The same frames through two ingest lifetimes: identical event ids, so the hotlist stores duplicates once.
    script = PassScript()
    script.add_pass("CA555555", 0, 7)
    start = time.time() - 10
    requests = pass_requests(script, 12, start)
    stored = []
    await env.start_dependencies()
    for lifetime in range(2):
        duplicates_before = await hotlist_duplicates(env)
        async with (
            env.run_ingest(track_max_missed_frames="3") as server,
            grpc.aio.insecure_channel(server.address) as ch,
        ):
            ingest = stub(ch)
            await register(ingest, env, fixed_camera("cam-1"))
            acks = [r.ack async for r in ingest.PushFrames(iter(requests), metadata=env.metadata("camera"))]
            assert len(acks) == 12
            if lifetime == 0:
                stored = await env.wait_for_revisions({"CA555555": 2})
            else:

                async def both_revisions_redelivered(before: float = duplicates_before) -> bool:
                    return await hotlist_duplicates(env) - before >= 2

                await wait_until_async(both_revisions_redelivered)
    assert [(r.plate, r.revision) for r in stored] == [("CA555555", 2)]
    # The redelivered revisions were duplicates of the stored event: no new read, the stored one unchanged.
    assert await env.reads() == stored
