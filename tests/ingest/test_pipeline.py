"""Frames through a real ingest server to plate events: batching, tracking, emission, GetPlateEvents, balancing.

Recognition is the real recognize service reading rendered plates (see :mod:`testkit.scenes`); the events land in
the real hotlist service, and the assertions read what it stored.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import grpc.aio

from anpr.api.common.v1 import plate_event_pb2
from anpr.api.ingest.v1 import event_pb2, ingest_service_pb2
from testkit.frames import frame
from testkit.ingest_env import PURPOSE, IngestEnvironment, fixed_camera, metric_value, register, stub
from testkit.passes import PassScript
from testkit.polling import wait_until_async
from testkit.recognize_process import recognize_process
from testkit.scrape import fetch_text

FPS = 10.0
FINAL = plate_event_pb2.PLATE_EVENT_STAGE_FINAL


def pass_frames(
    camera_id: str, script: PassScript, count: int, start: float
) -> list[ingest_service_pb2.PushFramesRequest]:
    return [
        ingest_service_pb2.PushFramesRequest(
            frame=frame(camera_id, f"{camera_id}-{n}", script.image(n), at=start + n / FPS)
        )
        for n in range(count)
    ]


async def push(env: IngestEnvironment, address: str, requests: list[ingest_service_pb2.PushFramesRequest]) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        acks = [r.ack async for r in stub(channel).PushFrames(iter(requests), metadata=env.metadata("camera"))]
    assert len(acks) == len(requests)


async def records(env: IngestEnvironment, address: str, **fields: object) -> list[event_pb2.PlateEventRecord]:
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await stub(channel).GetPlateEvents(
            ingest_service_pb2.GetPlateEventsRequest(purpose=PURPOSE, **fields),  # type: ignore[arg-type]
            metadata=env.metadata("operator"),
        )
    return list(reply.events)


async def test_two_passes_give_one_event_each_with_early_and_final(env: IngestEnvironment) -> None:
    script = PassScript()
    script.add_pass("CA111111", 0, 9, misread={4: "CA111117"})  # one frame shows (and is read as) another text
    script.add_pass("GP222222", 5, 14, y=500)  # in view at the same time, in the lower half of the frame
    server = await env.start_ingest(track_timeout_seconds="0.5", track_max_missed_frames="3")
    start = asyncio.get_running_loop().time()
    now = time.time() - 5
    async with grpc.aio.insecure_channel(server.address) as channel:
        await register(stub(channel), env, fixed_camera("cam-1", view_direction_degrees=90))
    await push(env, server.address, pass_frames("cam-1", script, 20, now))
    # Both passes end within the pushed frames (missed-frame limit), so both FINAL events come without waiting.
    # (The hotlist service accepted them, so ingest presented a service token.)
    reads = await env.wait_for_finals(["CA111111", "GP222222"])
    assert sorted((r.plate, r.event.stage) for r in reads) == [("CA111111", FINAL), ("GP222222", FINAL)]
    assert all(r.revision >= 2 for r in reads)  # an EARLY revision came first and was replaced
    final = next(r.event for r in reads if r.plate == "CA111111")
    assert final.frame_count == 10  # the misread frame is part of the pass; the vote outweighs it
    assert final.location.position.latitude == -33.92  # a fixed camera's registered location
    assert final.view_direction_degrees == 90
    assert final.model_version == "test-set t1"
    assert asyncio.get_running_loop().time() - start < 15

    async def both_delivered() -> bool:
        found = await records(env, server.address, camera_ids=["cam-1"])
        return len(found) == 2 and all(r.delivery_state == event_pb2.DELIVERY_STATE_DELIVERED for r in found)

    await wait_until_async(both_delivered)  # the delivered state is written right after the hotlist answered
    found = await records(env, server.address, camera_ids=["cam-1"])
    assert sorted(r.event.reading.text for r in found) == ["CA111111", "GP222222"]
    assert all(r.event.stage == FINAL for r in found)
    assert sorted(r.event.event_id for r in found) == sorted(r.event_id for r in reads)
    only = await records(env, server.address, plate="gp 222-222")
    assert [r.event.reading.text for r in only] == ["GP222222"]
    scraped = await fetch_text(f"http://127.0.0.1:{server.metrics_port}/metrics")
    assert 'anpr_ingest_events_emitted_total{stage="final"}' in scraped  # process-wide counter: other tests add
    assert "anpr_ingest_capture_to_event_seconds_count" in scraped
    assert "CA111111" not in scraped


async def test_open_pass_ends_by_timeout_when_the_camera_goes_quiet(env: IngestEnvironment) -> None:
    script = PassScript()
    # No long run of one character: on this 4:1 rendered plate, which readers read squeezed to 160 px, the shipped
    # reader drops one of six equal characters (MODEL_CARD.md, known limits); this test is about the timeout.
    script.add_pass("CA314159", 0, 5)
    server = await env.start_ingest(track_timeout_seconds="0.3")
    async with grpc.aio.insecure_channel(server.address) as channel:
        await register(stub(channel), env, fixed_camera("cam-1"))
    await push(env, server.address, pass_frames("cam-1", script, 6, time.time() - 0.6))
    [read] = await env.wait_for_finals(["CA314159"])
    # The EARLY revision was stored while the pass was open; the FINAL one replaced it after the timeout.
    assert read.revision == 2
    assert read.store_time < read.update_time
    assert read.event.frame_count == 6


async def scrape_value(url: str, sample: str) -> float:
    return metric_value(await fetch_text(url), sample)


IMAGES = 'anpr_recognize_images_total{rpc="Recognize"}'
RETRIES = "anpr_ingest_recognition_retries_total"


async def test_recognition_is_batched_retried_and_spread_over_replicas(
    env: IngestEnvironment, tokens_file: Path, scene_models: Path, tmp_path: Path
) -> None:
    # Replica A runs in this process; replica B in a process of its own, so its metrics count only its own work.
    await env.start_dependencies()
    async with recognize_process(tmp_path / "replica-b.json", tokens_file, scene_models) as replica_b:
        replica_a = env.recognize
        local_metrics = f"http://127.0.0.1:{replica_a.metrics_port}/metrics"
        # A static address list stands in for a DNS name resolving to both replicas; the policy is the same.
        target = f"ipv4:127.0.0.1:{replica_a.port},{replica_b.address}"
        server = await env.start_ingest(
            recognize_target=target,
            recognize_batch_size="4",
            recognize_batch_wait_seconds="0.05",
            recognize_attempts="10",
            track_max_missed_frames="3",
        )
        async with grpc.aio.insecure_channel(server.address) as channel:
            await register(stub(channel), env, fixed_camera("cam-1"))
            await register(stub(channel), env, fixed_camera("cam-2"))
        script = PassScript()
        script.add_pass("CA434343", 0, 29)
        a_before = await scrape_value(local_metrics, IMAGES)
        batches_before = await scrape_value(local_metrics, "anpr_ingest_recognition_batch_frames_count")
        await push(env, server.address, pass_frames("cam-1", script, 30, time.time() - 5))
        await env.wait_for_finals(["CA434343"])
        a_images = await scrape_value(local_metrics, IMAGES) - a_before
        b_images = await scrape_value(replica_b.metrics_url, IMAGES)
        assert a_images > 0  # round robin used both replicas
        assert b_images > 0
        assert a_images + b_images == 30  # every frame recognised once
        batches = await scrape_value(local_metrics, "anpr_ingest_recognition_batch_frames_count") - batches_before
        assert batches < 30  # frames were batched (at most 4 a call)
        [read] = await env.reads()
        assert read.event.frame_count == 30

        # A rolling restart: both replicas are gone for a while; ingest retries until one is back.
        await replica_b.stop()
        await replica_a.stop(0.2)
        ingest_metrics = f"http://127.0.0.1:{server.metrics_port}/metrics"
        retries_before = await scrape_value(ingest_metrics, RETRIES)
        second = PassScript()
        second.add_pass("CA454545", 0, 9)
        await push(env, server.address, pass_frames("cam-2", second, 14, time.time() - 3))

        async def retrying() -> bool:
            return await scrape_value(ingest_metrics, RETRIES) > retries_before

        await wait_until_async(retrying)
        await env.start_recognize(grpc_port=str(replica_a.port))
        reads = await env.wait_for_finals(["CA454545"])
        assert next(r for r in reads if r.plate == "CA454545").event.frame_count == 10  # no frame was lost


async def test_slow_recognition_does_not_split_a_pass(env: IngestEnvironment) -> None:
    # Frames wait for recognition longer than the pass timeout; the pass must still give one event, because a
    # camera's passes only time out once none of its frames is waiting for recognition. The camera runs at 100 fps
    # with a 0.05 s pass timeout, and ingest recognises one call of 2 frames at a time: the 10 frames (all
    # captured longer ago than the timeout) take longer than that to recognise.
    script = PassScript()
    script.add_pass("CA666666", 0, 9)
    server = await env.start_ingest(
        track_timeout_seconds="0.05",
        recognize_batch_size="2",
        recognize_concurrency="1",
        recognize_batch_wait_seconds="0",
    )
    ingest_metrics = f"http://127.0.0.1:{server.metrics_port}/metrics"
    camera = fixed_camera("cam-1")
    camera.limits.max_frames_per_second = 200
    async with grpc.aio.insecure_channel(server.address) as channel:
        await register(stub(channel), env, camera)
    busy_before = await scrape_value(ingest_metrics, "anpr_ingest_recognition_seconds_sum")
    frames = [
        ingest_service_pb2.PushFramesRequest(
            frame=frame("cam-1", f"cam-1-{n}", script.image(n), at=time.time() - 1 + n / 100)
        )
        for n in range(10)
    ]
    await push(env, server.address, frames)
    await env.wait_for_finals(["CA666666"])

    async def settled() -> bool:  # every event delivered
        return not await records(env, server.address, delivery_states=[event_pb2.DELIVERY_STATE_PENDING])

    await wait_until_async(settled)
    # One call at a time: the calls' durations add up to how long the frames waited, longer than the timeout.
    assert await scrape_value(ingest_metrics, "anpr_ingest_recognition_seconds_sum") - busy_before > 0.05
    reads = await env.reads()
    assert [(r.plate, r.event.stage, r.event.frame_count) for r in reads] == [("CA666666", FINAL, 10)]
