"""``anpr upload VIDEO --camera ID [--gps TRACK] [--start TIME]``: upload a recording (a body-worn camera's) to ingest.

The recording is sent with ``IngestService.UploadRecording`` in chunks. The upload id is derived from the file
(name, size, modification time) and the camera, so running the same command again after a broken connection asks
the service how much it holds (``GetUploadStatus``) and sends only the rest; the command also retries by itself
a few times. Reads carry the recording's time (``--start`` plus the offset in the video) and, with ``--gps``, the
position interpolated from the track (GPX, or NMEA with RMC sentences).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import grpc.aio
from google.protobuf import timestamp_pb2

from anpr.api.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from anpr.cli.transport import add_tls_arguments, client_tls
from anpr.runtime import tls
from anpr.runtime.errors import ConfigurationError

CHUNK_BYTES = 1024 * 1024
ATTEMPTS = 4
_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED)


class UsageError(Exception):
    """The command line or the files it names cannot be used."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``anpr upload``."""
    parser.add_argument("video", type=Path, help="the recording (any video OpenCV/FFmpeg reads)")
    parser.add_argument("--camera", required=True, help="id of the registered (body-worn) camera that recorded it")
    parser.add_argument("--gps", type=Path, default=None, help="GPS track of the recording: GPX, or NMEA (RMC)")
    parser.add_argument(
        "--start",
        default=None,
        help="when the recording started, ISO 8601 (e.g. 2026-12-06T08:15:00+02:00); default: the file's "
        "modification time minus the video's length",
    )
    parser.add_argument("--upload-id", default=None, help="resumable upload id (default: derived from the file)")
    parser.add_argument("--address", default="127.0.0.1:50051", help="host:port of the ingest service")
    parser.add_argument(
        "--token", default=None, help="bearer token of a camera or frame-relay client (default: $ANPR_TOKEN)"
    )
    add_tls_arguments(parser)


def upload_id_of(video: Path, camera_id: str) -> str:
    """A stable id for this file and camera (1-64 characters from ``A-Z a-z 0-9 . _ -``)."""
    stat = video.stat()
    digest = hashlib.sha256(f"{camera_id}\0{video.name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", video.stem)[:40]
    return f"{stem}-{digest[:16]}"


def start_of(video: Path, start: str | None) -> datetime:
    """The recording's start: ``--start`` parsed, or the modification time minus the video's length."""
    if start is not None:
        try:
            moment = datetime.fromisoformat(start)
        except ValueError:
            raise UsageError(f"--start {start!r} is not an ISO 8601 time") from None
        return moment if moment.tzinfo is not None else moment.astimezone()
    import cv2  # only here: the other commands need no OpenCV

    capture = cv2.VideoCapture(str(video))
    try:
        fps, frames = capture.get(cv2.CAP_PROP_FPS), capture.get(cv2.CAP_PROP_FRAME_COUNT)
    finally:
        capture.release()
    length = frames / fps if fps and fps > 0 and frames > 0 else 0.0
    return datetime.fromtimestamp(video.stat().st_mtime - length, UTC)


def track_of(path: Path | None) -> tuple[ingest_service_pb2.GpsTrackFormat.ValueType, str]:
    """(format, text) of the GPS track file; GPX when it starts with '<', else NMEA."""
    if path is None:
        return ingest_service_pb2.GPS_TRACK_FORMAT_UNSPECIFIED, ""
    text = path.read_text(encoding="utf-8", errors="replace")
    if text.lstrip().startswith("<"):
        return ingest_service_pb2.GPS_TRACK_FORMAT_GPX, text
    return ingest_service_pb2.GPS_TRACK_FORMAT_NMEA, text


async def upload(
    address: str,
    token: str,
    video: Path,
    header: ingest_service_pb2.RecordingHeader,
    client_tls: tls.ClientTls | None = None,
    attempts: int = ATTEMPTS,
) -> ingest_service_pb2.UploadRecordingResponse:
    """Upload ``video``, resuming where the service stands after each broken try."""
    metadata = (("authorization", f"Bearer {token}"),)
    async with tls.open_channel(address, client_tls) as channel:
        stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
        for attempt in range(1, attempts + 1):
            offset = 0
            try:
                status = await stub.GetUploadStatus(
                    ingest_service_pb2.GetUploadStatusRequest(camera_id=header.camera_id, upload_id=header.upload_id),
                    metadata=metadata,
                )
                offset = status.bytes_received
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise
            first = ingest_service_pb2.RecordingHeader()
            first.CopyFrom(header)
            first.offset = offset

            async def requests(
                first: ingest_service_pb2.RecordingHeader = first,
            ) -> AsyncIterator[ingest_service_pb2.UploadRecordingRequest]:
                yield ingest_service_pb2.UploadRecordingRequest(header=first)
                with video.open("rb") as stream:
                    stream.seek(first.offset)
                    while chunk := await asyncio.to_thread(stream.read, CHUNK_BYTES):
                        yield ingest_service_pb2.UploadRecordingRequest(chunk=chunk)

            try:
                response: ingest_service_pb2.UploadRecordingResponse = await stub.UploadRecording(
                    requests(), metadata=metadata
                )
                return response
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _RETRYABLE or attempt == attempts:
                    raise
                print(f"anpr upload: {exc.code().name}: {exc.details()}; resuming", file=sys.stderr)
                await asyncio.sleep(min(8.0, 0.5 * 2**attempt))
    raise AssertionError("unreachable")


def run(args: argparse.Namespace) -> int:
    """Run ``anpr upload``; prints a JSON summary (recording id, bytes, frames sampled)."""
    token = args.token or os.environ.get("ANPR_TOKEN", "")
    if not token:
        print("anpr upload: give --token or set ANPR_TOKEN", file=sys.stderr)
        return 2
    try:
        if not args.video.is_file():
            raise UsageError(f"{args.video}: no such file")
        started = start_of(args.video, args.start)
        track_format, track = track_of(args.gps)
        start_time = timestamp_pb2.Timestamp()
        start_time.FromDatetime(started.astimezone(UTC))
        header = ingest_service_pb2.RecordingHeader(
            camera_id=args.camera,
            start_time=start_time,
            total_bytes=args.video.stat().st_size,
            upload_id=args.upload_id or upload_id_of(args.video, args.camera),
            content_type="video/*",
            gps_track_format=track_format,
            gps_track=track,
        )
        response = asyncio.run(upload(args.address, token, args.video, header, client_tls(args)))
    except (OSError, UsageError, ConfigurationError) as exc:
        print(f"anpr upload: {exc}", file=sys.stderr)
        return 2
    except grpc.aio.AioRpcError as exc:
        print(f"anpr upload: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "recording_id": response.recording_id,
                "bytes_received": response.bytes_received,
                "frames_sampled": response.frames_sampled,
                "frames_rejected": response.frames_rejected,
                "duration_ms": response.duration_ms,
                "start_time": started.isoformat(),
            }
        )
    )
    return 0
