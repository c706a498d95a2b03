"""Frames pushed to a real ingest server: acknowledgements, idempotency, limits, floods and bad frames."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
import grpc.aio
import pytest
from google.protobuf import field_mask_pb2

from anpr.api.ingest.v1 import camera_pb2, frame_pb2, ingest_service_pb2
from testkit.frames import frame, jpeg
from testkit.ingest_env import IngestEnvironment, fixed_camera, register, stub
from testkit.scrape import fetch_text


async def test_submit_frame_is_idempotent(env: IngestEnvironment) -> None:
    server = await env.start_ingest()
    camera = env.metadata("camera")
    async with grpc.aio.insecure_channel(server.address) as channel:
        ingest = stub(channel)
        await register(ingest, env, fixed_camera("cam-1"))
        request = ingest_service_pb2.SubmitFrameRequest(frame=frame("cam-1", "f-1"))
        first = await ingest.SubmitFrame(request, metadata=camera)
        second = await ingest.SubmitFrame(request, metadata=camera)
    assert first.ack.status == frame_pb2.FRAME_STATUS_ACCEPTED
    assert second.ack.status == frame_pb2.FRAME_STATUS_DUPLICATE
    assert (second.ack.camera_id, second.ack.frame_id) == ("cam-1", "f-1")


REFUSALS: dict[str, tuple[Callable[[], frame_pb2.Frame], grpc.StatusCode, str]] = {
    "unknown-camera": (lambda: frame("nobody-cam", "f"), grpc.StatusCode.NOT_FOUND, "not registered"),
    "disabled": (lambda: frame("off-cam", "f"), grpc.StatusCode.FAILED_PRECONDITION, "disabled"),
    "oversized": (
        lambda: frame("cam-1", "f", data=jpeg(900, 900, 7) + b"\0" * 20_000),
        grpc.StatusCode.INVALID_ARGUMENT,
        "bytes; the limit is 10000",
    ),
    "not-an-image": (lambda: frame("cam-1", "f", data=b"GIF89a"), grpc.StatusCode.INVALID_ARGUMENT, "not a JPEG"),
    "empty": (lambda: frame("cam-1", "f", data=b""), grpc.StatusCode.INVALID_ARGUMENT, "empty"),
    "no-frame-id": (lambda: frame("cam-1", ""), grpc.StatusCode.INVALID_ARGUMENT, "frame_id"),
    "future": (lambda: frame("cam-1", "f", at=time.time() + 3600), grpc.StatusCode.INVALID_ARGUMENT, "future"),
}


async def test_submit_frame_refusals(env: IngestEnvironment) -> None:
    # One server for the whole table: starting one per case would dominate the run time.
    server = await env.start_ingest()
    async with grpc.aio.insecure_channel(server.address) as channel:
        ingest = stub(channel)
        limited = fixed_camera("cam-1")
        limited.limits.max_frame_bytes = 10_000
        await register(ingest, env, limited)
        await register(ingest, env, fixed_camera("off-cam", disabled=True))
        outcomes = {}
        for name, (build, _, _) in REFUSALS.items():
            # A camera token is refused an unknown camera as not its own (test_camera_label_...); a relay learns
            # that the camera is not registered.
            role = "frame-relay" if name == "unknown-camera" else "camera"
            try:
                await ingest.SubmitFrame(
                    ingest_service_pb2.SubmitFrameRequest(frame=build()), metadata=env.metadata(role)
                )
                outcomes[name] = (grpc.StatusCode.OK, "")
            except grpc.aio.AioRpcError as error:
                outcomes[name] = (error.code(), error.details() or "")
    for name, (_, code, mentions) in REFUSALS.items():
        assert outcomes[name][0] == code, name
        assert mentions in outcomes[name][1], name
    scraped = await fetch_text(f"http://127.0.0.1:{server.metrics_port}/metrics")
    for reason in ("unknown_camera", "camera_disabled", "frame_too_large", "invalid_image", "invalid_frame"):
        assert f'anpr_ingest_frames_rejected_total{{reason="{reason}"}}' in scraped


async def test_flood_is_throttled_with_resource_exhausted(env: IngestEnvironment) -> None:
    server = await env.start_ingest(rate_burst_seconds="1")
    async with grpc.aio.insecure_channel(server.address) as channel:
        ingest = stub(channel)
        limited = fixed_camera("cam-1")
        limited.limits.max_frames_per_second = 5
        await register(ingest, env, limited)
        codes = []
        details: set[str] = set()
        for index in range(20):
            try:
                await ingest.SubmitFrame(
                    ingest_service_pb2.SubmitFrameRequest(frame=frame("cam-1", f"f{index}")),
                    metadata=env.metadata("camera"),
                )
                codes.append(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as error:
                codes.append(error.code())
                details.add(error.details() or "")
    assert codes.count(grpc.StatusCode.OK) in range(5, 8)  # the burst, plus what refilled meanwhile
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= 12
    assert details == {"camera cam-1 exceeds its limit of 5 frames per second"}
    scraped = await fetch_text(f"http://127.0.0.1:{server.metrics_port}/metrics")
    assert 'anpr_ingest_frames_rejected_total{reason="rate_limited"}' in scraped


async def test_push_frames_acknowledges_every_frame_in_order_and_survives_bad_ones(env: IngestEnvironment) -> None:
    server = await env.start_ingest()
    frames = [
        frame("cam-1", "a"),
        frame("cam-1", "b", data=b"junk"),
        frame("nobody-cam", "c"),
        frame("cam-1", "a"),  # resubmitted after a lost ack
        frame("cam-1", "d"),
    ]
    async with grpc.aio.insecure_channel(server.address) as channel:
        ingest = stub(channel)
        await register(ingest, env, fixed_camera("cam-1"))
        call = ingest.PushFrames(
            (ingest_service_pb2.PushFramesRequest(frame=f) for f in frames), metadata=env.metadata("camera")
        )
        acks = [reply.ack async for reply in call]
        assert await call.code() == grpc.StatusCode.OK
    assert [(a.frame_id, a.status, a.reason) for a in acks] == [
        ("a", frame_pb2.FRAME_STATUS_ACCEPTED, frame_pb2.FRAME_REJECT_REASON_UNSPECIFIED),
        ("b", frame_pb2.FRAME_STATUS_REJECTED, frame_pb2.FRAME_REJECT_REASON_INVALID_IMAGE),
        # Not this camera token's camera (unknown cameras are refused alike, so they cannot be probed).
        ("c", frame_pb2.FRAME_STATUS_REJECTED, frame_pb2.FRAME_REJECT_REASON_PERMISSION_DENIED),
        ("a", frame_pb2.FRAME_STATUS_DUPLICATE, frame_pb2.FRAME_REJECT_REASON_UNSPECIFIED),
        ("d", frame_pb2.FRAME_STATUS_ACCEPTED, frame_pb2.FRAME_REJECT_REASON_UNSPECIFIED),
    ]


async def test_push_frames_pushes_back_when_recognition_is_behind(env: IngestEnvironment) -> None:
    # Nothing listens at the recognize address (UNAVAILABLE, retried with backoff), the pending queue holds 4 frames:
    # the fifth and later frames wait for room and are then throttled as OVERLOADED, instead of piling up in memory.
    server = await env.start_ingest(
        dependencies=False,
        max_pending_frames="4",
        overload_wait_seconds="0.05",
        recognize_concurrency="1",
        recognize_batch_size="1",
    )
    async with grpc.aio.insecure_channel(server.address) as channel:
        ingest = stub(channel)
        camera = fixed_camera("cam-1")
        camera.limits.max_frames_per_second = 1000
        await register(ingest, env, camera)
        requests = (ingest_service_pb2.PushFramesRequest(frame=frame("cam-1", f"f{i}")) for i in range(12))
        acks = [reply.ack async for reply in ingest.PushFrames(requests, metadata=env.metadata("camera"))]
    statuses = [a.status for a in acks]
    assert len(acks) == 12
    assert statuses.count(frame_pb2.FRAME_STATUS_ACCEPTED) <= 6  # queue + the batch taken out + one in the call
    throttled = [a for a in acks if a.status == frame_pb2.FRAME_STATUS_THROTTLED]
    assert throttled
    assert all(a.reason == frame_pb2.FRAME_REJECT_REASON_OVERLOADED and a.retry_after.seconds >= 1 for a in throttled)


async def test_camera_label_restricts_which_client_may_send(env: IngestEnvironment) -> None:
    server = await env.start_ingest()
    async with grpc.aio.insecure_channel(server.address) as channel:
        ingest = stub(channel)
        await register(ingest, env, fixed_camera("owned", labels={"principal": "someone-else"}))
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await ingest.SubmitFrame(
                ingest_service_pb2.SubmitFrameRequest(frame=frame("owned", "f")), metadata=env.metadata("camera")
            )
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # Deny by default (issue 19): a camera without the label, or one not registered, takes no frames from a
        # camera token; both are refused alike, so a camera token cannot probe which cameras exist.
        unbound = fixed_camera("unbound")
        await ingest.RegisterCamera(
            ingest_service_pb2.RegisterCameraRequest(camera=unbound), metadata=env.metadata("ingest-admin")
        )
        for camera_id in ("unbound", "never-registered"):
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await ingest.SubmitFrame(
                    ingest_service_pb2.SubmitFrameRequest(frame=frame(camera_id, "f")), metadata=env.metadata("camera")
                )
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        acks = [
            reply.ack
            async for reply in ingest.PushFrames(
                iter([ingest_service_pb2.PushFramesRequest(frame=frame("unbound", "s"))]),
                metadata=env.metadata("camera"),
            )
        ]
        assert acks[0].reason == frame_pb2.FRAME_REJECT_REASON_PERMISSION_DENIED
        # Only an explicitly trusted relay may submit for any camera.
        reply = await ingest.SubmitFrame(
            ingest_service_pb2.SubmitFrameRequest(frame=frame("owned", "f")), metadata=env.metadata("frame-relay")
        )
        assert reply.ack.status == frame_pb2.FRAME_STATUS_ACCEPTED


async def test_camera_shows_online_after_a_frame(env: IngestEnvironment) -> None:
    server = await env.start_ingest()
    async with grpc.aio.insecure_channel(server.address) as channel:
        ingest = stub(channel)
        await register(ingest, env, fixed_camera("cam-1"))
        await ingest.SubmitFrame(
            ingest_service_pb2.SubmitFrameRequest(frame=frame("cam-1", "f")), metadata=env.metadata("camera")
        )
        got = await ingest.GetCamera(
            ingest_service_pb2.GetCameraRequest(camera_id="cam-1"), metadata=env.metadata("operator")
        )
        assert got.camera.connectivity == camera_pb2.CAMERA_CONNECTIVITY_ONLINE
        assert got.camera.last_frame_time.seconds > 0
        # A disabled camera is refused from the next frame on (the change invalidates the cache at once).
        await ingest.UpdateCamera(
            ingest_service_pb2.UpdateCameraRequest(
                camera=camera_pb2.Camera(camera_id="cam-1", disabled=True),
                update_mask=field_mask_pb2.FieldMask(paths=["disabled"]),
            ),
            metadata=env.metadata("ingest-admin"),
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await ingest.SubmitFrame(
                ingest_service_pb2.SubmitFrameRequest(frame=frame("cam-1", "g")), metadata=env.metadata("camera")
            )
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    scraped = await fetch_text(f"http://127.0.0.1:{server.metrics_port}/metrics")
    assert "# TYPE anpr_ingest_cameras gauge" in scraped
