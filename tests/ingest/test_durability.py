"""Accepted means durable: frames survive a recognize outage and a restart; overload throttles; stop drains.

Real ingest, recognize and hotlist servers; the frames are rendered plates the recognize service reads for real.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest

from anpr.api.ingest.v1 import frame_pb2, ingest_service_pb2
from anpr.ingest.journal import FrameJournal
from testkit.frames import frame
from testkit.ingest_env import IngestEnvironment, fixed_camera, register, stub, unused_port
from testkit.passes import PassScript

FPS = 10.0


def pass_requests(camera_id: str, script: PassScript, count: int, start: float) -> list[frame_pb2.Frame]:
    return [frame(camera_id, f"{camera_id}-{n}", script.image(n), at=start + n / FPS) for n in range(count)]


async def push_all(env: IngestEnvironment, address: str, frames: list[frame_pb2.Frame]) -> list[frame_pb2.FrameAck]:
    async with grpc.aio.insecure_channel(address) as channel:
        requests = (ingest_service_pb2.PushFramesRequest(frame=f) for f in frames)
        return [r.ack async for r in stub(channel).PushFrames(requests, metadata=env.metadata("camera"))]


async def journal_depth(env: IngestEnvironment) -> int:
    journal = FrameJournal(env.spool_path.with_name(f"{env.spool_path.stem}-frames.sqlite3"))
    await journal.open()
    try:
        return await journal.depth()
    finally:
        await journal.close()


async def test_frames_accepted_while_recognize_is_down_become_events_after_a_restart(env: IngestEnvironment) -> None:
    # First lifetime: recognize is unreachable the whole time, so every accepted frame is still journaled at stop.
    # Second lifetime (same disk): the frames are recognised in order and the pass becomes one event.
    script = PassScript()
    script.add_pass("CA246810", 0, 6)
    frames = pass_requests("cam-1", script, 10, time.time() - 5)
    nowhere = f"dns:///127.0.0.1:{unused_port()}"
    await env.start_dependencies()
    async with env.run_ingest(recognize_target=nowhere, shutdown_grace_seconds="1") as server:
        async with grpc.aio.insecure_channel(server.address) as channel:
            await register(stub(channel), env, fixed_camera("cam-1"))
        acks = await push_all(env, server.address, frames)
    assert [a.status for a in acks] == [frame_pb2.FRAME_STATUS_ACCEPTED] * 10
    assert await env.reads() == []
    assert await journal_depth(env) == 10

    async with env.run_ingest(track_max_missed_frames="3"):
        stored = await env.wait_for_finals(["CA246810"], seconds=30)
    assert [r.plate for r in stored] == ["CA246810"]
    assert await journal_depth(env) == 0  # released once the final event was spooled


async def test_a_recognize_outage_delays_frames_and_loses_none(env: IngestEnvironment) -> None:
    # Recognize is down when the pass arrives and comes back a few seconds later on the same address.
    script = PassScript()
    script.add_pass("CA135790", 0, 6)
    frames = pass_requests("cam-1", script, 10, time.time() - 5)
    port = unused_port()
    server = await env.start_ingest(
        recognize_target=f"dns:///127.0.0.1:{port}", track_max_missed_frames="3", max_queue_seconds="60"
    )
    async with grpc.aio.insecure_channel(server.address) as channel:
        await register(stub(channel), env, fixed_camera("cam-1"))
    acks = await push_all(env, server.address, frames)
    assert [a.status for a in acks] == [frame_pb2.FRAME_STATUS_ACCEPTED] * 10
    await asyncio.sleep(2.0)  # the outage: calls fail and are retried
    await env.start_recognize(grpc_port=str(port))
    stored = await env.wait_for_finals(["CA135790"], seconds=30)
    assert [r.plate for r in stored] == ["CA135790"]
    assert stored[0].event.frame_count == 7


async def test_frames_are_throttled_once_the_oldest_waits_too_long(env: IngestEnvironment) -> None:
    # Recognize unreachable: the first frame is accepted (journaled); once it has waited longer than
    # max_queue_seconds, cameras hear RESOURCE_EXHAUSTED / THROTTLED and keep their frames.
    server = await env.start_ingest(dependencies=False, max_queue_seconds="0.3")
    async with grpc.aio.insecure_channel(server.address) as channel:
        ingest = stub(channel)
        await register(ingest, env, fixed_camera("cam-1"))
        first = await ingest.SubmitFrame(
            ingest_service_pb2.SubmitFrameRequest(frame=frame("cam-1", "f-0")), metadata=env.metadata("camera")
        )
        await asyncio.sleep(0.6)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await ingest.SubmitFrame(
                ingest_service_pb2.SubmitFrameRequest(frame=frame("cam-1", "f-1")), metadata=env.metadata("camera")
            )
    assert first.ack.status == frame_pb2.FRAME_STATUS_ACCEPTED
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "overloaded" in (refused.value.details() or "")


async def test_stop_sends_cameras_away_between_passes_and_keeps_the_pass_whole(env: IngestEnvironment) -> None:
    # A long grace (30 s): the stop must not need it. The idle camera's stream ends at once with UNAVAILABLE; the
    # camera in mid-pass is still heard until its pass ended, then sent away; the pass is one event.
    server = await env.start_ingest(track_max_missed_frames="3", shutdown_grace_seconds="30")
    script = PassScript()
    script.add_pass("CA112233", 0, 6)
    start = time.time() - 5
    passing = pass_requests("cam-pass", script, 40, start)
    midway = asyncio.Event()

    async def paced() -> AsyncIterator[ingest_service_pb2.PushFramesRequest]:
        for n, item in enumerate(passing):
            if n == 3:
                midway.set()
            yield ingest_service_pb2.PushFramesRequest(frame=item)
            await asyncio.sleep(0.1)

    async def idle() -> AsyncIterator[ingest_service_pb2.PushFramesRequest]:
        yield ingest_service_pb2.PushFramesRequest(frame=frame("cam-idle", "i-0"))
        await asyncio.Event().wait()  # a camera with nothing more to say, keeping its stream open

    async def consume(
        call: grpc.aio.StreamStreamCall[ingest_service_pb2.PushFramesRequest, ingest_service_pb2.PushFramesResponse],
        acks: list[frame_pb2.FrameAck],
    ) -> grpc.StatusCode:
        try:
            async for reply in call:
                acks.append(reply.ack)
        except grpc.aio.AioRpcError as error:
            return error.code()
        return grpc.StatusCode.OK

    async with grpc.aio.insecure_channel(server.address) as channel:
        ingest = stub(channel)
        await register(ingest, env, fixed_camera("cam-pass"))
        await register(ingest, env, fixed_camera("cam-idle"))
        pass_acks: list[frame_pb2.FrameAck] = []
        idle_acks: list[frame_pb2.FrameAck] = []
        pass_call = ingest.PushFrames(paced(), metadata=env.metadata("camera"))
        idle_call = ingest.PushFrames(idle(), metadata=env.metadata("camera"))
        pass_end = asyncio.create_task(consume(pass_call, pass_acks))
        idle_end = asyncio.create_task(consume(idle_call, idle_acks))
        await midway.wait()
        await asyncio.wait_for(server.stop(), timeout=20)  # well inside the 30 s grace
        codes = list(await asyncio.gather(pass_end, idle_end))
    assert codes == [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE]
    assert [a.status for a in idle_acks] == [frame_pb2.FRAME_STATUS_ACCEPTED]
    # Every frame of the pass (0-6) and the frames that ended it were heard before the camera was sent away.
    assert len(pass_acks) >= 8
    assert all(a.status == frame_pb2.FRAME_STATUS_ACCEPTED for a in pass_acks)
    assert len(pass_acks) < len(passing)
    stored = await env.wait_for_finals(["CA112233"], seconds=30)
    assert [(r.plate, r.event.frame_count) for r in stored] == [("CA112233", 7)]
