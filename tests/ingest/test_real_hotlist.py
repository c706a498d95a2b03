"""Delivery into the real hotlist service: events are stored, and a redelivered event is a harmless duplicate."""

from __future__ import annotations

import time

import grpc
import grpc.aio

from anpr.api.common.v1 import plate_event_pb2
from anpr.api.hotlist.v1 import hotlist_service_pb2, hotlist_service_pb2_grpc, read_pb2
from anpr.api.ingest.v1 import event_pb2, ingest_service_pb2
from testkit.frames import frame
from testkit.ingest_env import PURPOSE, IngestEnvironment, bearer, fixed_camera, register, stub
from testkit.passes import PassScript
from testkit.polling import wait_until_async


async def test_events_are_stored_by_the_real_hotlist_service(env: IngestEnvironment) -> None:
    await env.start_dependencies()
    hotlist = env.hotlist
    script = PassScript()
    script.add_pass("CA808080", 0, 7)
    server = await env.start_ingest(track_max_missed_frames="3")
    start = time.time() - 5
    async with grpc.aio.insecure_channel(server.address) as channel:
        ingest = stub(channel)
        await register(ingest, env, fixed_camera("cam-1"))
        requests = [
            ingest_service_pb2.PushFramesRequest(frame=frame("cam-1", f"cam-1-{n}", script.image(n), at=start + n / 10))
            for n in range(12)
        ]
        [r async for r in ingest.PushFrames(iter(requests), metadata=env.metadata("camera"))]

        async def delivered() -> list[event_pb2.PlateEventRecord]:
            reply = await ingest.GetPlateEvents(
                ingest_service_pb2.GetPlateEventsRequest(
                    delivery_states=[event_pb2.DELIVERY_STATE_DELIVERED], purpose=PURPOSE
                ),
                metadata=env.metadata("operator"),
            )
            return [r for r in reply.events if r.event.stage == plate_event_pb2.PLATE_EVENT_STAGE_FINAL]

        async def final_delivered() -> bool:
            return len(await delivered()) == 1

        await wait_until_async(final_delivered)
        [record] = await delivered()
    async with grpc.aio.insecure_channel(hotlist.address) as channel:
        reply = await hotlist_service_pb2_grpc.HotlistServiceStub(channel).ReportReads(
            hotlist_service_pb2.ReportReadsRequest(events=[record.event]), metadata=bearer(env.tokens["ingest-service"])
        )
    assert [r.status for r in reply.results] == [read_pb2.READ_STATUS_DUPLICATE]
    [read] = await env.reads()
    assert (read.event_id, read.revision, read.plate) == (record.event.event_id, record.event.revision, "CA808080")
