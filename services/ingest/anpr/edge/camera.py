"""The local camera: sample frames at the target rate, attach the GPS fix, and buffer them on disk."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from anpr.api.common.v1 import image_pb2
from anpr.api.ingest.v1 import frame_pb2
from anpr.edge import metrics
from anpr.edge.buffer import FrameBuffer
from anpr.edge.gps import GpsState
from anpr.ingest.capture import VideoReader, encode_jpeg
from anpr.ingest.convert import gps_to_proto, timestamp

log = logging.getLogger(__name__)


class CameraLoop:
    """Reads the camera until cancelled; reconnects with backoff when it fails."""

    def __init__(
        self,
        camera_id: str,
        video_source: str,
        buffer: FrameBuffer,
        gps: GpsState,
        *,
        target_fps: float,
        jpeg_quality: int = 90,
        loop_video: bool = False,
    ) -> None:
        self._camera_id = camera_id
        self._source = video_source
        self._buffer = buffer
        self._gps = gps
        self._interval = 1.0 / target_fps
        self._quality = jpeg_quality
        self._loop_video = loop_video
        self._session = f"{int(time.time() * 1000):x}"  # frame ids stay unique across restarts of the agent
        self._count = 0
        self.finished = asyncio.Event()  # a non-looping file reached its end

    async def run(self) -> None:
        """Capture until cancelled (or until a non-looping video file ends)."""
        # A regular file plays at its own rate and may end; devices and streams are live and are reopened.
        is_file = await asyncio.to_thread(Path(self._source).is_file)
        delay = 0.5
        while True:
            reader = await VideoReader.open(str(self._source))
            if reader is None:
                metrics.CAMERA_UP.set(0)
                log.warning("cannot open the camera; retrying in %.1f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 0.5
            metrics.CAMERA_UP.set(1)
            try:
                ended = await self._read(reader, is_file)
            finally:
                await reader.close()
                metrics.CAMERA_UP.set(0)
            if is_file and ended and not self._loop_video:
                self.finished.set()
                return
            if not is_file:
                await asyncio.sleep(delay)  # a live source failed: do not spin on reopening it

    async def _read(self, reader: VideoReader, is_file: bool) -> bool:
        loop = asyncio.get_running_loop()
        file_fps = reader.info.fps if is_file else 0.0
        started = loop.time()
        next_sample = 0.0
        index = -1
        while True:
            if not await reader.grab():
                return index >= 0
            index += 1
            # Files play at their own rate (as a camera would deliver); live sources at the rate they arrive.
            position = index / file_fps if file_fps > 0 else loop.time() - started
            if file_fps > 0 and (wait := started + position - loop.time()) > 0:
                await asyncio.sleep(wait)
            if position + 1e-9 < next_sample:
                continue
            next_sample = max(next_sample + self._interval, position)
            image = await reader.retrieve()
            if image is None:
                continue
            await self._buffer_frame(await encode_jpeg(image, self._quality))

    async def _buffer_frame(self, data: bytes) -> None:
        self._count += 1
        frame = frame_pb2.Frame(
            camera_id=self._camera_id,
            frame_id=f"{self._camera_id}-{self._session}-{self._count}",
            capture_time=timestamp(time.time()),
            image=image_pb2.EncodedImage(data=data, encoding=image_pb2.IMAGE_ENCODING_JPEG),
        )
        fix = self._gps.current()
        if fix is not None:
            frame.gps.CopyFrom(gps_to_proto(fix))
        await self._buffer.append(frame.SerializeToString())
        metrics.FRAMES_CAPTURED.inc()
