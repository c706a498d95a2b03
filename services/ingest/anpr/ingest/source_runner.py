"""One pulled source: open, sample to the target frame rate, submit, reconnect with exponential backoff."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from anpr.api.common.v1 import image_pb2
from anpr.api.ingest.v1 import frame_pb2, source_pb2
from anpr.ingest import metrics
from anpr.ingest.capture import VideoReader, encode_jpeg
from anpr.ingest.convert import timestamp

log = logging.getLogger(__name__)

Submit = Callable[[frame_pb2.Frame], Awaitable[frame_pb2.FrameAck]]
_CREDENTIALS = re.compile(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", re.IGNORECASE)


def redact(uri: str) -> str:
    """The URI with any user:password replaced by ``***``."""
    return _CREDENTIALS.sub(r"\1***@", uri)


def file_path(uri: str) -> str:
    """The local path of a file source (``file://`` prefix removed)."""
    return uri.removeprefix("file://")


class SourceRunner:
    """Runs one source as an asyncio task and exposes its state as a ``Source`` message."""

    def __init__(
        self,
        source: source_pb2.Source,
        submit: Submit,
        *,
        default_fps: float,
        backoff_initial: float,
        backoff_max: float,
        on_state_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.source = source_pb2.Source()
        self.source.CopyFrom(source)
        self._uri = source.uri  # with credentials; only ever shown redacted
        self.source.uri = redact(source.uri)
        self._fps = source.target_fps or default_fps
        self._submit = submit
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._on_state_change = on_state_change
        self._task: asyncio.Task[None] | None = None
        self._set_state(source_pb2.SOURCE_STATE_CONNECTING, "")

    def start(self) -> None:
        """Start pulling."""
        self._task = asyncio.create_task(self._run(), name=f"source-{self.source.source_id}")

    async def stop(self) -> None:
        """Stop pulling; safe to call twice."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    @property
    def done(self) -> bool:
        """True once the runner ended by itself (a finished or failed file, or a bug); not after ``stop``."""
        return self._task is not None and self._task.done()

    def snapshot(self) -> source_pb2.Source:
        """A copy of the current state."""
        copy = source_pb2.Source()
        copy.CopyFrom(self.source)
        return copy

    def _set_state(self, state: source_pb2.SourceState.ValueType, message: str) -> None:
        if self.source.state != state:
            self.source.state_change_time.CopyFrom(timestamp(time.time()))
        self.source.state = state
        self.source.state_message = message
        self._on_state_change()

    async def _run(self) -> None:
        try:
            await self._pull_until_done()
        except Exception:
            # A bug must not leave a source shown as RUNNING (and leased) while nothing pulls it.
            log.exception("source %s stopped on an unexpected error", self.source.source_id)
            self._set_state(source_pb2.SOURCE_STATE_FAILED, "stopped on an internal error (see the service log)")

    async def _pull_until_done(self) -> None:
        is_file = self.source.kind == source_pb2.SOURCE_KIND_FILE
        while True:
            if is_file and not await asyncio.to_thread(Path(file_path(self._uri)).is_file):
                self._set_state(source_pb2.SOURCE_STATE_FAILED, "file not found or not readable")
                return
            reader = await VideoReader.open(file_path(self._uri) if is_file else self._uri)
            if reader is None:
                if is_file:
                    self._set_state(source_pb2.SOURCE_STATE_FAILED, "file is not a readable video")
                    return
                await self._back_off("cannot open the stream")
                continue
            try:
                ended_cleanly = await self._pull(reader, is_file)
            finally:
                await reader.close()
            if is_file and ended_cleanly:
                if self.source.loop:
                    continue
                self._set_state(source_pb2.SOURCE_STATE_FINISHED, "end of file")
                return
            await self._back_off("stream ended or read failed")

    async def _back_off(self, why: str) -> None:
        self.source.reconnect_attempts += 1
        metrics.SOURCE_RECONNECTS.inc()
        delay = min(self._backoff_max, self._backoff_initial * 2 ** (self.source.reconnect_attempts - 1))
        delay *= random.uniform(0.8, 1.2)  # noqa: S311  (jitter: many cameras must not reconnect in lockstep)
        self._set_state(source_pb2.SOURCE_STATE_RECONNECTING, f"{why}; retrying in {delay:.1f} s")
        await asyncio.sleep(delay)

    async def _pull(self, reader: VideoReader, is_file: bool) -> bool:
        """Read until the stream ends; True when it ended (file end), False on a read error."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        wall_start = time.time()
        stream_fps = reader.info.fps
        interval = 1.0 / self._fps
        next_sample = 0.0
        index = -1
        while True:
            if not await reader.grab():
                return is_file and index >= 0
            index += 1
            if index == 0:
                self.source.reconnect_attempts = 0
                self._set_state(source_pb2.SOURCE_STATE_RUNNING, "")
            # Position in the stream: for files from the frame index and the file's rate, else the clock.
            # (Live streams often state a nominal rate, e.g. 25 for MJPEG, that says nothing about arrival.)
            position = index / stream_fps if is_file and stream_fps > 0 else loop.time() - started
            if is_file and stream_fps > 0:
                # Files play at their own rate, like a camera would deliver them.
                delay = started + position - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            if position + 1e-9 < next_sample:
                continue
            next_sample += interval
            if next_sample < position:
                next_sample = position + interval  # fell behind (slow reads): do not burst to catch up
            image = await reader.retrieve()
            if image is None:
                continue
            data = await encode_jpeg(image)
            capture_time = wall_start + position if is_file else time.time()
            frame = frame_pb2.Frame(
                camera_id=self.source.camera_id,
                frame_id=f"{self.source.source_id}-{int(wall_start * 1000)}-{index}",
                capture_time=timestamp(capture_time),
                image=image_pb2.EncodedImage(data=data, encoding=image_pb2.IMAGE_ENCODING_JPEG),
            )
            ack = await self._submit(frame)
            if ack.status == frame_pb2.FRAME_STATUS_ACCEPTED:
                self.source.frames_sampled += 1
                self.source.last_frame_time.CopyFrom(frame.capture_time)
            elif ack.status == frame_pb2.FRAME_STATUS_REJECTED and ack.reason in (
                frame_pb2.FRAME_REJECT_REASON_UNKNOWN_CAMERA,
                frame_pb2.FRAME_REJECT_REASON_CAMERA_DISABLED,
            ):
                self._set_state(source_pb2.SOURCE_STATE_RECONNECTING, ack.message)
                return False
