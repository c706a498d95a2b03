"""Ingest holds its events to the plate event contract: an invalid GPS fix costs the location, never the event."""

from __future__ import annotations

import time

import grpc.aio

from anpr.api.common.v1 import geo_pb2
from anpr.api.ingest.v1 import camera_pb2, ingest_service_pb2
from testkit.frames import frame
from testkit.ingest_env import IngestEnvironment, metric_value, register, stub
from testkit.passes import PassScript
from testkit.scrape import fetch_text

DROPPED = 'anpr_ingest_event_fields_dropped_total{field="location"}'


async def test_an_invalid_gps_fix_is_dropped_from_the_event_and_counted(env: IngestEnvironment) -> None:
    script = PassScript()
    script.add_pass("CA777777", 0, 7)
    start = time.time() - 10
    requests = []
    for n in range(12):
        message = frame("unit-1", f"unit-1-{n}", script.image(n), at=start + n / 10)
        message.gps.CopyFrom(geo_pb2.GpsFix(position=geo_pb2.GeoPoint(latitude=123.0, longitude=18.4)))
        requests.append(ingest_service_pb2.PushFramesRequest(frame=message))
    async with (
        env.run_ingest(track_max_missed_frames="3") as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        metrics_url = f"http://127.0.0.1:{server.metrics_port}/metrics"
        before = metric_value(await fetch_text(metrics_url), DROPPED)
        ingest = stub(channel)
        mobile = camera_pb2.Camera(camera_id="unit-1", kind=camera_pb2.CAMERA_KIND_MOBILE, display_name="unit 1")
        await register(ingest, env, mobile)
        assert len([r async for r in ingest.PushFrames(iter(requests), metadata=env.metadata("camera"))]) == 12
        (read,) = await env.wait_for_revisions({"CA777777": 2})
        assert not read.event.HasField("location")
        # Both revisions (early and final) lost their location; neither became a dead letter.
        assert metric_value(await fetch_text(metrics_url), DROPPED) - before == 2
        dead = await ingest.ListDeadLetters(
            ingest_service_pb2.ListDeadLettersRequest(purpose="Checking the contract drops only the fix"),
            metadata=env.metadata("ingest-admin"),
        )
        assert list(dead.dead_letters) == []
