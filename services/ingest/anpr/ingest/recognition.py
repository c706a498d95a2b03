"""Client of ``RecognizeService.Recognize``: one batch per call, deadlines, retries on UNAVAILABLE with backoff.

The channel (see :mod:`anpr.ingest.channels`) already retries UNAVAILABLE transparently and spreads calls over
every replica; the retries here cover the case where all replicas are briefly gone (a rolling restart).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
import grpc.aio

from anpr.api.common.v1 import image_pb2
from anpr.api.recognize.v1 import recognition_pb2, recognize_service_pb2, recognize_service_pb2_grpc
from anpr.ingest import metrics
from anpr.ingest.tracking.model import Gps


@dataclass(frozen=True)
class PendingFrame:
    """An accepted frame waiting for recognition."""

    camera_id: str
    frame_id: str
    capture_time: float  # seconds since the epoch
    image: bytes
    encoding: image_pb2.ImageEncoding.ValueType = image_pb2.IMAGE_ENCODING_UNSPECIFIED
    gps: Gps | None = None
    plate_regions: tuple[str, ...] = ()  # the camera's expected plate regions
    plate_crop: bool = False  # the camera sends plate crops, not scenes


class RecognitionFailed(Exception):
    """A batch could not be recognised (after retries); the frames are dropped and counted."""

    def __init__(self, code: grpc.StatusCode, detail: str) -> None:
        super().__init__(f"{code.name}: {detail}")
        self.code = code


_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})


class RecognitionClient:
    """Sends batches of frames to the recognize service."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        metadata: tuple[tuple[str, str], ...],
        *,
        deadline_seconds: float = 10.0,
        attempts: int = 4,
        backoff_initial_seconds: float = 0.1,
        include_crops: bool = True,
    ) -> None:
        self._stub = recognize_service_pb2_grpc.RecognizeServiceStub(channel)
        self._metadata = metadata
        self._deadline = deadline_seconds
        self._attempts = attempts
        self._backoff = backoff_initial_seconds
        self._options = recognition_pb2.RecognitionOptions(include_plate_crops=include_crops)

    async def recognize(self, frames: Sequence[PendingFrame]) -> recognize_service_pb2.RecognizeResponse:
        """Results for ``frames`` in order; raises :class:`RecognitionFailed`."""
        request = recognize_service_pb2.RecognizeRequest(
            images=[
                recognition_pb2.ImageInput(
                    image_id=frame.frame_id,
                    image=image_pb2.EncodedImage(data=frame.image, encoding=frame.encoding),
                    plate_crop=frame.plate_crop,
                    plate_regions=frame.plate_regions,
                )
                for frame in frames
            ],
            options=self._options,
        )
        metrics.RECOGNITION_BATCH_SIZE.observe(len(frames))
        started = time.perf_counter()
        delay = self._backoff
        for attempt in range(1, self._attempts + 1):
            try:
                response = await self._stub.Recognize(request, timeout=self._deadline, metadata=self._metadata)
            except grpc.aio.AioRpcError as error:
                if error.code() in _RETRYABLE and attempt < self._attempts:
                    metrics.RECOGNITION_RETRIES.inc()
                    await asyncio.sleep(delay)
                    delay *= 2
                    continue
                raise RecognitionFailed(error.code(), error.details() or "") from error
            metrics.RECOGNITION_SECONDS.observe(time.perf_counter() - started)
            if len(response.results) != len(frames):
                raise RecognitionFailed(
                    grpc.StatusCode.INTERNAL, f"{len(response.results)} results for {len(frames)} images"
                )
            return response
        raise AssertionError("unreachable")  # the loop returns or raises
