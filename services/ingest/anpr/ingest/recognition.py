"""Client of ``RecognizeService.Recognize``: one batch per call, deadlines, retries with backoff.

The retries here are the only ones (the channel has no gRPC retry policy, see :mod:`anpr.runtime.retries`); the
channel spreads calls over every replica, so the next attempt after a replica went away goes to another one.
Accepted frames are never given up because recognize is away, only because recognize refuses them.

Each batch is a span under its first frame's span, linked to the others' (:func:`anpr.runtime.tracing.batch_span`);
every attempt is a client span below it, and the first frame's request id goes with the call.
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
from anpr.runtime import tracing


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
    seq: int = 0  # its place in the frame journal (0: not journaled)
    origin: tracing.Origin | None = None  # the request and frame span it came with (none after a restart)


class RecognitionFailed(Exception):
    """Recognize refused a batch (not an outage): the caller retries its frames one at a time."""

    def __init__(self, code: grpc.StatusCode, detail: str) -> None:
        super().__init__(f"{code.name}: {detail}")
        self.code = code


# An outage or overload of recognize (or a token it does not accept yet): the frames wait and are sent again, for
# as long as it takes; they are safe in the frame journal and admission throttles cameras meanwhile.
_OUTAGE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
# Maybe about these frames (a slow or crashing image): retried a few times, then the batch is split so that a bad
# frame fails alone instead of holding every camera's frames behind it.
_SUSPECT = frozenset({grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})


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
        backoff_max_seconds: float = 1.0,
        include_crops: bool = True,
    ) -> None:
        self._stub = recognize_service_pb2_grpc.RecognizeServiceStub(channel)
        self._metadata = metadata
        self._deadline = deadline_seconds
        self._attempts = attempts
        self._backoff = backoff_initial_seconds
        self._backoff_max = backoff_max_seconds
        self._options = recognition_pb2.RecognitionOptions(include_plate_crops=include_crops)

    async def recognize(self, frames: Sequence[PendingFrame]) -> recognize_service_pb2.RecognizeResponse:
        """Results for ``frames`` in order, however long recognize is away; raises :class:`RecognitionFailed`."""
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
        with tracing.batch_span("ingest.recognition_batch", [f.origin for f in frames], {"anpr.frames": len(frames)}):
            return await self._recognize(request, len(frames))

    async def _recognize(
        self, request: recognize_service_pb2.RecognizeRequest, count: int
    ) -> recognize_service_pb2.RecognizeResponse:
        started = time.perf_counter()
        delay = self._backoff
        suspect_failures = 0
        while True:
            try:
                response = await self._stub.Recognize(request, timeout=self._deadline, metadata=self._metadata)
            except grpc.aio.AioRpcError as error:
                code = error.code()
                if code in _SUSPECT:
                    suspect_failures += 1
                if code not in _OUTAGE and (code not in _SUSPECT or suspect_failures >= self._attempts):
                    raise RecognitionFailed(code, error.details() or "") from error
                metrics.RECOGNITION_RETRIES.inc()
                await asyncio.sleep(delay)
                # Capped low: once recognize is back, frames flow again within about a second.
                delay = min(delay * 2, self._backoff_max)
                continue
            metrics.RECOGNITION_SECONDS.observe(time.perf_counter() - started)
            if len(response.results) != count:
                raise RecognitionFailed(grpc.StatusCode.INTERNAL, f"{len(response.results)} results for {count} images")
            return response
