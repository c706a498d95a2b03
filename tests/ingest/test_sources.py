"""Pulled sources: a generated video file is sampled, submitted and tracked; bad sources fail clearly."""

from __future__ import annotations

from pathlib import Path

import grpc
import grpc.aio
import pytest

from anpr.api.ingest.v1 import ingest_service_pb2, source_pb2
from testkit.frames import jpeg, render_plates
from testkit.ingest_env import IngestEnvironment, fixed_camera, register, stub
from testkit.mjpeg import mjpeg_server
from testkit.polling import wait_until_async
from testkit.scrape import fetch_text
from testkit.videos import write_video

VIDEO_FPS = 20


def street_video(path: Path, seconds: float) -> Path:
    frames = (
        render_plates([("CA123456", 10 + 10 * index, 120)], width=640, height=360)
        for index in range(int(seconds * VIDEO_FPS))
    )
    return write_video(path, frames, VIDEO_FPS)


async def test_file_source_is_sampled_to_the_target_rate_and_finishes(env: IngestEnvironment, tmp_path: Path) -> None:
    video = street_video(tmp_path / "street.avi", seconds=1.5)
    server = await env.start_ingest()
    operator = env.metadata("operator")
    images_before = await env.recognized_images()
    async with grpc.aio.insecure_channel(server.address) as channel:
        ingest = stub(channel)
        camera = fixed_camera("cam-1")
        camera.limits.max_frames_per_second = 100
        await register(ingest, env, camera)
        added = await ingest.AddSource(
            ingest_service_pb2.AddSourceRequest(
                source=source_pb2.Source(
                    source_id="street",
                    camera_id="cam-1",
                    kind=source_pb2.SOURCE_KIND_FILE,
                    uri=str(video),
                    target_fps=5,
                )
            ),
            metadata=operator,
        )
        assert added.source.state in (source_pb2.SOURCE_STATE_CONNECTING, source_pb2.SOURCE_STATE_RUNNING)

        async def finished() -> bool:
            listed = await ingest.ListSources(ingest_service_pb2.ListSourcesRequest(), metadata=operator)
            return listed.sources[0].state == source_pb2.SOURCE_STATE_FINISHED

        await wait_until_async(finished, seconds=15)
        listed = await ingest.ListSources(ingest_service_pb2.ListSourcesRequest(camera_id="cam-1"), metadata=operator)
        [source] = listed.sources
        assert source.frames_sampled in range(7, 10)  # 1.5 s at 5 fps, sampled from 20 fps
        assert source.last_frame_time.seconds > 0

        async def all_recognised() -> bool:  # the last sampled frames may still be on their way
            return await env.recognized_images() - images_before >= source.frames_sampled

        await wait_until_async(all_recognised)
        assert await env.recognized_images() - images_before == source.frames_sampled
        scraped = await fetch_text(f"http://127.0.0.1:{server.metrics_port}/metrics")
        assert 'anpr_ingest_sources{state="finished"} 1.0' in scraped
        assert 'anpr_ingest_frames_received_total{transport="pull"}' in scraped

        removed = await ingest.RemoveSource(
            ingest_service_pb2.RemoveSourceRequest(source_id="street"), metadata=operator
        )
        assert removed.source.state == source_pb2.SOURCE_STATE_FINISHED
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await ingest.RemoveSource(ingest_service_pb2.RemoveSourceRequest(source_id="street"), metadata=operator)
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_bad_sources(env: IngestEnvironment, tmp_path: Path) -> None:
    server = await env.start_ingest(source_backoff_initial_seconds="0.05", source_backoff_max_seconds="0.1")
    operator = env.metadata("operator")
    async with grpc.aio.insecure_channel(server.address) as channel:
        ingest = stub(channel)
        await register(ingest, env, fixed_camera("cam-1"))

        async def add(source: source_pb2.Source) -> source_pb2.Source:
            reply = await ingest.AddSource(ingest_service_pb2.AddSourceRequest(source=source), metadata=operator)
            return reply.source

        refusals = {
            "no kind": (source_pb2.Source(camera_id="cam-1", uri="x.mp4"), grpc.StatusCode.INVALID_ARGUMENT),
            "wrong scheme": (
                source_pb2.Source(camera_id="cam-1", kind=source_pb2.SOURCE_KIND_RTSP, uri="http://cam/stream"),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
            "unknown camera": (
                source_pb2.Source(camera_id="nope", kind=source_pb2.SOURCE_KIND_FILE, uri="/x.mp4"),
                grpc.StatusCode.FAILED_PRECONDITION,
            ),
        }
        for name, (source, code) in refusals.items():
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await add(source)
            assert refused.value.code() == code, name

        missing = await add(
            source_pb2.Source(camera_id="cam-1", kind=source_pb2.SOURCE_KIND_FILE, uri=str(tmp_path / "none.mp4"))
        )
        unreachable = await add(
            source_pb2.Source(
                source_id="rtsp-down",
                camera_id="cam-1",
                kind=source_pb2.SOURCE_KIND_RTSP,
                uri="rtsp://user:secret@127.0.0.1:9/stream",
            )
        )
        assert unreachable.uri == "rtsp://***@127.0.0.1:9/stream"  # credentials never leave the server

        async def settled() -> bool:
            listed = await ingest.ListSources(ingest_service_pb2.ListSourcesRequest(), metadata=operator)
            states = {s.source_id: s for s in listed.sources}
            return (
                states[missing.source_id].state == source_pb2.SOURCE_STATE_FAILED
                and states["rtsp-down"].state == source_pb2.SOURCE_STATE_RECONNECTING
                and states["rtsp-down"].reconnect_attempts >= 2
            )

        await wait_until_async(settled, seconds=20)
        deleted = await ingest.DeleteCamera(
            ingest_service_pb2.DeleteCameraRequest(camera_id="cam-1"), metadata=operator
        )
        assert deleted.removed_source_count == 2


async def test_sources_are_restarted_with_the_service(env: IngestEnvironment, tmp_path: Path) -> None:
    video = street_video(tmp_path / "loop.avi", seconds=0.5)
    source = source_pb2.Source(
        source_id="looped", camera_id="cam-1", kind=source_pb2.SOURCE_KIND_FILE, uri=f"file://{video}", loop=True
    )
    operator = env.metadata("operator")
    async with env.run_ingest() as server, grpc.aio.insecure_channel(server.address) as channel:
        ingest = stub(channel)
        camera = fixed_camera("cam-1")
        camera.limits.max_frames_per_second = 100
        await register(ingest, env, camera)
        await ingest.AddSource(ingest_service_pb2.AddSourceRequest(source=source), metadata=operator)
        with pytest.raises(grpc.aio.AioRpcError) as twice:
            await ingest.AddSource(ingest_service_pb2.AddSourceRequest(source=source), metadata=operator)
        assert twice.value.code() == grpc.StatusCode.ALREADY_EXISTS
    async with env.run_ingest() as server, grpc.aio.insecure_channel(server.address) as channel:
        ingest = stub(channel)

        async def running_again() -> bool:
            listed = await ingest.ListSources(ingest_service_pb2.ListSourcesRequest(), metadata=operator)
            return [(s.source_id, s.state) for s in listed.sources] == [("looped", source_pb2.SOURCE_STATE_RUNNING)]

        await wait_until_async(running_again)


async def test_mjpeg_stream_is_sampled_and_reconnected_when_it_drops(env: IngestEnvironment) -> None:
    server = await env.start_ingest(source_backoff_initial_seconds="0.1", source_backoff_max_seconds="0.2")
    operator = env.metadata("operator")
    # The camera serves 30 frames at 20 fps per connection (1.5 s), then hangs up.
    async with (
        mjpeg_server(jpeg(320, 240), frames=30, fps=20) as (url, connections),
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        ingest = stub(channel)
        camera = fixed_camera("cam-1")
        camera.limits.max_frames_per_second = 100
        await register(ingest, env, camera)
        source = source_pb2.Source(
            source_id="ipcam", camera_id="cam-1", kind=source_pb2.SOURCE_KIND_MJPEG, uri=url, target_fps=4
        )
        await ingest.AddSource(ingest_service_pb2.AddSourceRequest(source=source), metadata=operator)

        async def reconnected() -> bool:
            listed = await ingest.ListSources(ingest_service_pb2.ListSourcesRequest(), metadata=operator)
            return len(connections) >= 2 and listed.sources[0].frames_sampled >= 5

        await wait_until_async(reconnected, seconds=15)
        listed = await ingest.ListSources(ingest_service_pb2.ListSourcesRequest(), metadata=operator)
    [pulled] = listed.sources
    # Sampled by the clock at 4 fps (not by the 25 fps the MJPEG stream claims): about 6 per 1.5 s connection.
    assert pulled.frames_sampled <= 8 * len(connections)
    scraped = await fetch_text(f"http://127.0.0.1:{server.metrics_port}/metrics")
    assert "anpr_ingest_source_reconnects_total" in scraped
