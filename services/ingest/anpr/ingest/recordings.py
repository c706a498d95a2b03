"""Uploaded recordings (body-worn cameras): staging the upload on disk, resuming it, sampling it into frames.

An upload is written to ``<recording_dir>/<key>.part`` as it arrives, ``key`` a hash of (camera, upload id), so a
broken connection loses nothing that reached the disk and the next stream continues at the file's size. Once the
whole video is there it is sampled like a file source (:class:`~anpr.ingest.capture.VideoReader`), but as fast as
intake takes the frames and with the recording's own time: capture time = start + offset in the video. Frame ids
are ``rec:<recording id>:<offset ms>``, so re-sampling a recording after an interrupted try gives duplicates, not
second reads. The staged file is deleted after sampling; parts of uploads that were never finished are deleted
after ``recording_resume_seconds``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from anpr.api.common.v1 import image_pb2
from anpr.api.ingest.v1 import frame_pb2, ingest_service_pb2
from anpr.ingest.capture import VideoReader, encode_jpeg
from anpr.ingest.convert import gps_to_proto, recording_frame_id, timestamp
from anpr.ingest.gps_track import MAX_TRACK_CHARS, BadTrack, GpsTrack, parse_gpx, parse_nmea
from anpr.runtime.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted

log = logging.getLogger(__name__)

MAX_CHUNK_BYTES = 4 * 1024 * 1024
_UPLOAD_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

Submit = Callable[[frame_pb2.Frame], Awaitable[frame_pb2.FrameAck]]


def parse_track(header: ingest_service_pb2.RecordingHeader) -> GpsTrack | None:
    """The header's GPS track, None without one; InvalidArgument when it cannot be used."""
    fmt = header.gps_track_format
    if fmt == ingest_service_pb2.GPS_TRACK_FORMAT_UNSPECIFIED:
        if header.gps_track:
            raise InvalidArgument("header.gps_track is set but header.gps_track_format is not (GPX or NMEA)")
        return None
    if not header.gps_track.strip():
        raise InvalidArgument("header.gps_track is empty")
    if len(header.gps_track) > MAX_TRACK_CHARS:
        raise InvalidArgument(f"header.gps_track is longer than {MAX_TRACK_CHARS} characters")
    try:
        return (
            parse_gpx(header.gps_track)
            if fmt == ingest_service_pb2.GPS_TRACK_FORMAT_GPX
            else parse_nmea(header.gps_track)
        )
    except BadTrack as exc:
        raise InvalidArgument(f"header.gps_track: {exc}") from None


@dataclass
class Staged:
    """An upload being received."""

    path: Path
    total_bytes: int
    received: int


class RecordingStore:
    """The staging directory of uploads, with per-upload locks and expiry of abandoned parts."""

    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        resume_seconds: float,
        *,
        sample_fps: float = 5.0,
        max_age_seconds: float = 86_400.0,
        max_skew_seconds: float = 300.0,
    ) -> None:
        self._directory = directory
        self._max_bytes = max_bytes
        self._resume_seconds = resume_seconds
        self.sample_fps = sample_fps
        self._max_age = max_age_seconds
        self._max_skew = max_skew_seconds
        self._busy: set[str] = set()

    def check_start(self, start: float) -> None:
        """InvalidArgument when frames captured at ``start`` would be refused by intake as out of range."""
        now = time.time()
        if start > now + self._max_skew:
            raise InvalidArgument("header.start_time is in the future")
        if start < now - self._max_age:
            raise InvalidArgument(
                f"header.start_time is more than {self._max_age:g} s ago; frames that old are not accepted"
            )

    def _path(self, camera_id: str, upload_id: str) -> Path:
        key = hashlib.sha256(f"{camera_id}\0{upload_id}".encode()).hexdigest()[:32]
        return self._directory / f"{key}.part"

    async def status(self, camera_id: str, upload_id: str) -> tuple[int, int]:
        """(bytes received, total bytes) of a resumable upload; NotFound when none is held."""
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise InvalidArgument("upload_id must be 1-64 characters from A-Z a-z 0-9 . _ -")
        path = self._path(camera_id, upload_id)
        size = await asyncio.to_thread(_size, path)
        total = await asyncio.to_thread(_read_total, path)
        if size is None or total is None:
            raise NotFound(f"no upload {upload_id} for camera {camera_id} is held (never started, done or expired)")
        return size, total

    async def begin(self, header: ingest_service_pb2.RecordingHeader) -> tuple[str, Staged]:
        """Check the header against what is held and return (recording id, staged file) to append to."""
        if header.total_bytes == 0:
            raise InvalidArgument("header.total_bytes is required: the recording is empty")
        if header.total_bytes > self._max_bytes:
            raise ResourceExhausted(
                f"the recording is {header.total_bytes} bytes; the limit is {self._max_bytes} bytes"
            )
        await asyncio.to_thread(self._directory.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(self._expire)
        if not header.upload_id:
            if header.offset:
                raise InvalidArgument("header.offset needs header.upload_id (only named uploads resume)")
            recording_id = uuid.uuid4().hex
        elif not _UPLOAD_ID.fullmatch(header.upload_id):
            raise InvalidArgument("header.upload_id must be 1-64 characters from A-Z a-z 0-9 . _ -")
        else:
            recording_id = header.upload_id
        path = self._path(header.camera_id, recording_id)
        if str(path) in self._busy:
            raise Aborted(f"upload {recording_id} of camera {header.camera_id} is already being received")
        held = await asyncio.to_thread(_size, path) or 0
        total = await asyncio.to_thread(_read_total, path)
        if held and total is not None and total != header.total_bytes:
            raise FailedPrecondition(
                f"upload {recording_id} was started with total_bytes {total}, not {header.total_bytes}"
            )
        if header.offset != held:
            raise FailedPrecondition(
                f"header.offset is {header.offset} but the service holds {held} bytes of upload {recording_id}; "
                f"resume with offset {held}"
            )
        if not held:
            await asyncio.to_thread(_start, path, header.total_bytes)
        return recording_id, Staged(path, header.total_bytes, held)

    def hold(self, staged: Staged) -> None:
        """Mark the upload as being received (one stream at a time)."""
        self._busy.add(str(staged.path))

    def release(self, staged: Staged) -> None:
        """The stream receiving the upload ended."""
        self._busy.discard(str(staged.path))

    async def append(self, staged: Staged, chunk: bytes) -> None:
        """Write the next bytes to disk (before the next are read, so a break loses nothing that was written)."""
        if not chunk:
            return
        if len(chunk) > MAX_CHUNK_BYTES:
            raise InvalidArgument(f"a chunk is {len(chunk)} bytes; at most {MAX_CHUNK_BYTES} per message")
        if staged.received + len(chunk) > staged.total_bytes:
            raise InvalidArgument(
                f"more bytes arrived than header.total_bytes ({staged.total_bytes}); the upload is kept at "
                f"{staged.received} bytes"
            )
        await asyncio.to_thread(_append, staged.path, chunk)
        staged.received += len(chunk)

    async def discard(self, staged: Staged) -> None:
        """Delete the staged file and its header (after sampling, or an upload that cannot be resumed)."""
        await asyncio.to_thread(_remove, staged.path)

    def _expire(self) -> None:
        cutoff = time.time() - self._resume_seconds
        for path in self._directory.glob("*.part"):
            try:
                if path.stat().st_mtime < cutoff and str(path) not in self._busy:
                    _remove(path)
            except OSError:
                continue


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _read_total(path: Path) -> int | None:
    try:
        return int(path.with_suffix(".total").read_text())
    except (FileNotFoundError, ValueError):
        return None


def _start(path: Path, total: int) -> None:
    path.with_suffix(".total").write_text(str(total))
    path.write_bytes(b"")


def _append(path: Path, chunk: bytes) -> None:
    with path.open("ab") as stream:
        stream.write(chunk)
        stream.flush()


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_suffix(".total").unlink(missing_ok=True)


@dataclass
class SampleResult:
    """What sampling a recording did."""

    sampled: int = 0
    rejected: int = 0
    duration_ms: int = 0


async def sample(
    path: Path,
    camera_id: str,
    recording_id: str,
    start: float,
    track: GpsTrack | None,
    fps: float,
    submit: Submit,
) -> SampleResult:
    """Sample the video at ``fps`` and submit its frames; InvalidArgument when it is not a readable video."""
    reader = await VideoReader.open(str(path))
    if reader is None:
        raise InvalidArgument("the upload is not a readable video")
    result = SampleResult()
    try:
        stream_fps = reader.info.fps
        if stream_fps <= 0:
            raise InvalidArgument("the video does not state its frame rate; offsets cannot be known")
        interval = 1.0 / fps
        next_sample = 0.0
        index = -1
        while await reader.grab():
            index += 1
            offset = index / stream_fps
            result.duration_ms = round(offset * 1000)
            if offset + 1e-9 < next_sample:
                continue
            next_sample += interval
            image = await reader.retrieve()
            if image is None:
                continue
            offset_ms = round(offset * 1000)
            frame = frame_pb2.Frame(
                camera_id=camera_id,
                frame_id=recording_frame_id(recording_id, offset_ms),
                capture_time=timestamp(start + offset_ms / 1000),
                image=image_pb2.EncodedImage(data=await encode_jpeg(image), encoding=image_pb2.IMAGE_ENCODING_JPEG),
            )
            fix = track.at(start + offset_ms / 1000) if track is not None else None
            if fix is not None:
                frame.gps.CopyFrom(gps_to_proto(fix))
            if await _submit_until_taken(submit, frame):
                result.sampled += 1
            else:
                result.rejected += 1
        if index < 0:
            raise InvalidArgument("the video has no frames")
    finally:
        await reader.close()
    return result


async def _submit_until_taken(submit: Submit, frame: frame_pb2.Frame) -> bool:
    """Submit, waiting out throttling (the recording is on disk; nothing is dropped for load)."""
    while True:
        ack = await submit(frame)
        if ack.status in (frame_pb2.FRAME_STATUS_ACCEPTED, frame_pb2.FRAME_STATUS_DUPLICATE):
            return True
        if ack.status != frame_pb2.FRAME_STATUS_THROTTLED:
            log.warning("frame %s of an uploaded recording refused: %s", frame.frame_id, ack.message)
            return False
        await asyncio.sleep(max(0.05, ack.retry_after.ToNanoseconds() / 1e9))
