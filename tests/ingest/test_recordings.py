"""Uploaded recordings (body-worn cameras): read with the recording's time and the interpolated GPS position,
resumed after a broken connection, and bad uploads refused with clear codes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import grpc.aio
import pytest
from google.protobuf import timestamp_pb2

from anpr.api.ingest.v1 import camera_pb2, ingest_service_pb2
from anpr.cli.main import main
from testkit.frames import frame, render_plates
from testkit.ingest_env import IngestEnvironment, register, stub
from testkit.polling import wait_until_async
from testkit.videos import write_video

VIDEO_FPS = 20
CHUNK = 16 * 1024
PLATE = "CA123456"
START = time.time() - 600  # recorded ten minutes ago, uploaded now
# The track runs from 10 s before the recording to 20 s into it, due south at a steady pace.
TRACK_START, TRACK_END = START - 10, START + 20
LAT_START, LAT_END, LON = -33.90, -33.93, 18.42


def body_camera(camera_id: str) -> camera_pb2.Camera:
    return camera_pb2.Camera(
        camera_id=camera_id,
        kind=camera_pb2.CAMERA_KIND_BODY,
        display_name=camera_id,
        moving=camera_pb2.MovingLocation(),
        limits=camera_pb2.CameraLimits(max_frames_per_second=100),
    )


def recording(path: Path, seconds: float = 2.0) -> bytes:
    frames = (
        render_plates([(PLATE, 10 + 10 * index, 120)], width=640, height=360)
        for index in range(int(seconds * VIDEO_FPS))
    )
    return write_video(path, frames, VIDEO_FPS).read_bytes()


def gpx() -> str:
    def point(at: float, lat: float) -> str:
        stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return f'<trkpt lat="{lat}" lon="{LON}"><time>{stamp}</time></trkpt>'

    return (
        '<?xml version="1.0"?><gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">'
        f"<trk><trkseg>{point(TRACK_START, LAT_START)}{point(TRACK_END, LAT_END)}</trkseg></trk></gpx>"
    )


def latitude_at(at: float) -> float:
    return LAT_START + (LAT_END - LAT_START) * (at - TRACK_START) / (TRACK_END - TRACK_START)


def start_time() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(round(START * 1e9))
    return stamp


def header(camera_id: str, data: bytes, **fields: object) -> ingest_service_pb2.UploadRecordingRequest:
    values: dict[str, object] = {
        "camera_id": camera_id,
        "start_time": start_time(),
        "total_bytes": len(data),
        "content_type": "video/x-msvideo",
        **fields,
    }
    return ingest_service_pb2.UploadRecordingRequest(header=ingest_service_pb2.RecordingHeader(**values))  # type: ignore[arg-type]


def chunks(data: bytes) -> list[ingest_service_pb2.UploadRecordingRequest]:
    return [ingest_service_pb2.UploadRecordingRequest(chunk=data[i : i + CHUNK]) for i in range(0, len(data), CHUNK)]


async def test_upload_yields_events_with_recording_time_and_interpolated_position(
    env: IngestEnvironment, tmp_path: Path
) -> None:
    data = recording(tmp_path / "bodycam.avi")
    server = await env.start_ingest(recording_sample_fps="10")
    async with grpc.aio.insecure_channel(server.address) as channel:
        ingest = stub(channel)
        await register(ingest, env, body_camera("body-7"))
        requests = [
            header(
                "body-7",
                data,
                upload_id="shift-42.avi",
                gps_track_format=ingest_service_pb2.GPS_TRACK_FORMAT_GPX,
                gps_track=gpx(),
            ),
            *chunks(data),
        ]
        # The camera's own token: body-7 is bound to it.
        reply = await ingest.UploadRecording(iter(requests), metadata=env.metadata("camera"))
        assert reply.recording_id == "shift-42.avi"
        assert reply.bytes_received == len(data)
        assert reply.frames_sampled == 20  # 2 s at 10 fps, sampled from 20 fps
        assert reply.frames_rejected == 0
        assert reply.duration_ms == 1950

    [read] = await env.wait_for_finals([PLATE], seconds=30)
    event = read.event
    assert event.camera_id == "body-7"
    assert event.recording.recording_id == "shift-42.avi"
    assert event.best_frame_id == f"rec:shift-42.avi:{event.recording.offset_ms}"
    assert event.recording.offset_ms % 100 == 0
    assert event.recording.offset_ms < 2000
    # Capture times are the recording's time, not the upload's.
    first = event.first_seen_time.ToNanoseconds() / 1e9
    last = event.last_seen_time.ToNanoseconds() / 1e9
    assert START - 0.001 <= first <= last <= START + 2.0
    best = START + event.recording.offset_ms / 1000
    assert first - 0.001 <= best <= last + 0.001
    # The position is the track's, interpolated at the best frame's capture time.
    assert event.location.position.latitude == pytest.approx(latitude_at(best), abs=1e-6)
    assert event.location.position.longitude == pytest.approx(LON)
    assert not (tmp_path / "spool-recordings").exists() or not list((tmp_path / "spool-recordings").glob("*.part"))


async def test_interrupted_upload_resumes_with_the_rest_only(env: IngestEnvironment, tmp_path: Path) -> None:
    data = recording(tmp_path / "bodycam.avi", seconds=1.0)
    server = await env.start_ingest()
    relay = env.metadata("frame-relay")
    async with grpc.aio.insecure_channel(server.address) as channel:
        ingest = stub(channel)
        await register(ingest, env, body_camera("body-8"))
        first_part = 3
        assert len(data) > 2 * first_part * CHUNK
        cut = asyncio.Event()

        async def broken() -> AsyncIterator[ingest_service_pb2.UploadRecordingRequest]:
            yield header("body-8", data, upload_id="clip-1")
            for request in chunks(data)[:first_part]:
                yield request
            await cut.wait()  # the connection drops before the rest is sent

        call = ingest.UploadRecording(broken(), metadata=relay)
        status_request = ingest_service_pb2.GetUploadStatusRequest(camera_id="body-8", upload_id="clip-1")

        async def arrived() -> bool:
            try:
                status = await ingest.GetUploadStatus(status_request, metadata=relay)
            except grpc.aio.AioRpcError:
                return False
            return status.bytes_received == first_part * CHUNK

        await wait_until_async(arrived, seconds=10)
        call.cancel()
        cut.set()
        with pytest.raises(asyncio.CancelledError):
            await call

        status = await ingest.GetUploadStatus(status_request, metadata=relay)
        assert (status.bytes_received, status.total_bytes) == (first_part * CHUNK, len(data))

        # A resume from the wrong place is refused with the right offset in the message.
        with pytest.raises(grpc.aio.AioRpcError) as wrong:
            await ingest.UploadRecording(iter([header("body-8", data, upload_id="clip-1", offset=0)]), metadata=relay)
        assert wrong.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert f"resume with offset {first_part * CHUNK}" in (wrong.value.details() or "")

        rest = [header("body-8", data, upload_id="clip-1", offset=status.bytes_received), *chunks(data)[first_part:]]
        reply = await ingest.UploadRecording(iter(rest), metadata=relay)
        assert reply.bytes_received == len(data)
        assert reply.frames_sampled == 5  # 1 s at the default 5 fps

        # Done: nothing is held any more.
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await ingest.GetUploadStatus(status_request, metadata=relay)
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    await env.wait_for_finals([PLATE], seconds=30)


async def test_bad_uploads_get_clear_errors(env: IngestEnvironment, tmp_path: Path) -> None:
    data = recording(tmp_path / "bodycam.avi", seconds=0.5)
    server = await env.start_ingest(dependencies=False, recording_max_bytes=str(len(data) + 10))
    relay = env.metadata("frame-relay")
    async with grpc.aio.insecure_channel(server.address) as channel:
        ingest = stub(channel)
        await register(ingest, env, body_camera("body-9"))
        await register(ingest, env, _bound_elsewhere("body-10"))
        junk = b"this is not a video" * 100

        cases: dict[str, tuple[list[ingest_service_pb2.UploadRecordingRequest], grpc.StatusCode, str, object]] = {
            "no header": (chunks(data)[:1], grpc.StatusCode.INVALID_ARGUMENT, "must be the header", relay),
            "empty": (
                [header("body-9", b"")],
                grpc.StatusCode.INVALID_ARGUMENT,
                "recording is empty",
                relay,
            ),
            "not a video": (
                [header("body-9", junk), *chunks(junk)],
                grpc.StatusCode.INVALID_ARGUMENT,
                "not a readable video",
                relay,
            ),
            "too large": (
                [header("body-9", data + b"x" * 100)],
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "the limit is",
                relay,
            ),
            "bad GPX": (
                [header("body-9", data, gps_track_format=ingest_service_pb2.GPS_TRACK_FORMAT_GPX, gps_track="<gpx")],
                grpc.StatusCode.INVALID_ARGUMENT,
                "not a valid GPX document",
                relay,
            ),
            "bad NMEA": (
                [header("body-9", data, gps_track_format=ingest_service_pb2.GPS_TRACK_FORMAT_NMEA, gps_track="$GP,x")],
                grpc.StatusCode.INVALID_ARGUMENT,
                "NMEA line 1",
                relay,
            ),
            "no start time": (
                [header("body-9", data, start_time=timestamp_pb2.Timestamp())],
                grpc.StatusCode.INVALID_ARGUMENT,
                "start_time",
                relay,
            ),
            "more than announced": (
                [header("body-9", data[:100]), ingest_service_pb2.UploadRecordingRequest(chunk=data[:200])],
                grpc.StatusCode.INVALID_ARGUMENT,
                "more bytes arrived",
                relay,
            ),
            "cut short, not resumable": (
                [header("body-9", data), *chunks(data[:100])],
                grpc.StatusCode.ABORTED,
                "cannot be resumed",
                relay,
            ),
            "unknown camera": ([header("nope", data)], grpc.StatusCode.NOT_FOUND, "not registered", relay),
            "another camera's token": (
                [header("body-10", data)],
                grpc.StatusCode.PERMISSION_DENIED,
                "may not upload recordings",
                env.metadata("camera"),
            ),
            "an operator": ([header("body-9", data)], grpc.StatusCode.PERMISSION_DENIED, "", env.metadata("operator")),
        }
        # (Each case sends what the service reads before it answers: a client still writing when the answer comes
        # may see its own write fail instead of the status.)
        for name, (requests, code, words, metadata) in cases.items():
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await ingest.UploadRecording(iter(requests), metadata=metadata)  # type: ignore[arg-type]
            assert refused.value.code() == code, name
            assert words in (refused.value.details() or ""), (name, refused.value.details())

        # Frame ids of recordings cannot be forged by a live camera (events would point at footage).
        with pytest.raises(grpc.aio.AioRpcError) as forged:
            await ingest.SubmitFrame(
                ingest_service_pb2.SubmitFrameRequest(frame=frame("body-9", "rec:x:0")), metadata=relay
            )
        assert forged.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def _bound_elsewhere(camera_id: str) -> camera_pb2.Camera:
    camera = body_camera(camera_id)
    camera.labels["principal"] = "another-camera"
    return camera


async def test_anpr_upload_command(env: IngestEnvironment, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = tmp_path / "officer.avi"
    video.write_bytes(recording(tmp_path / "made.avi", seconds=1.0))
    track = tmp_path / "track.gpx"
    track.write_text(gpx())
    server = await env.start_ingest(dependencies=False)
    async with grpc.aio.insecure_channel(server.address) as channel:
        await register(stub(channel), env, body_camera("body-11"))
    start = datetime.fromtimestamp(START, UTC).isoformat()
    base = ["upload", str(video), "--camera", "body-11", "--address", server.address]
    token = ["--token", env.tokens["frame-relay"]]

    def anpr(*argv: str) -> int:
        try:
            main(list(argv))
        except SystemExit as exit:
            return int(exit.code or 0)
        return 0

    assert await asyncio.to_thread(anpr, *base, "--gps", str(track), "--start", start, *token) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["bytes_received"] == video.stat().st_size
    assert summary["frames_sampled"] == 5
    assert summary["recording_id"].startswith("officer-")

    assert await asyncio.to_thread(anpr, *base, "--start", "yesterday", *token) == 2
    assert "not an ISO 8601 time" in capsys.readouterr().err
    assert await asyncio.to_thread(anpr, *base, "--start", start, "--token", env.tokens["operator"]) == 1
    assert "PERMISSION_DENIED" in capsys.readouterr().err
