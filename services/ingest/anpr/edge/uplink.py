"""The link to ingest: drain the disk buffer in order over one PushFrames stream, reconnecting with backoff.

Up to ``window`` frames are in flight; each acknowledgement (in order) removes its frame from the buffer. A frame
is only forgotten once ingest answered for it, so a dropped link loses nothing: the unacknowledged frames are sent
again on the next stream, and ingest recognises any it had already accepted as duplicates. A THROTTLED answer ends
the stream; the frame stays first in line and is sent again after the delay ingest asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator

import grpc
import grpc.aio

from anpr.api.ingest.v1 import frame_pb2, ingest_service_pb2, ingest_service_pb2_grpc
from anpr.edge import metrics
from anpr.edge.buffer import FrameBuffer

log = logging.getLogger(__name__)

_STATUS_NAMES = {value: name.removeprefix("FRAME_STATUS_").lower() for name, value in frame_pb2.FrameStatus.items()}


class _Throttled(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"throttled for {retry_after:.1f} s")
        self.retry_after = retry_after


class _LinkClosed(Exception):
    """Ingest ended the stream (for example while shutting down)."""


class Uplink:
    """Owns the stream to ingest; :meth:`run` until cancelled."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        metadata: tuple[tuple[str, str], ...],
        buffer: FrameBuffer,
        *,
        window: int = 16,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self._stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
        self._metadata = metadata
        self._buffer = buffer
        self._window = window
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Keep a stream open and drain the buffer through it."""
        delay = self._backoff_initial
        while True:
            try:
                await self._stream()
                delay = self._backoff_initial
            except _Throttled as throttled:
                await asyncio.sleep(throttled.retry_after)
                continue
            except grpc.aio.AioRpcError as error:
                log.warning("link to ingest down: %s; retrying in %.1f s", error.code().name, delay)
            except _LinkClosed:
                log.warning("stream to ingest closed or not opened; reconnecting in %.1f s", delay)
            finally:
                self.connected.clear()
                metrics.LINK_UP.set(0)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff_max)

    async def _stream(self) -> None:
        outbox: asyncio.Queue[ingest_service_pb2.PushFramesRequest | None] = asyncio.Queue()

        async def requests() -> AsyncIterator[ingest_service_pb2.PushFramesRequest]:
            while (request := await outbox.get()) is not None:
                yield request

        call = self._stub.PushFrames(requests(), metadata=self._metadata)
        in_flight: deque[int] = deque()
        slots = asyncio.Semaphore(self._window)
        reader = asyncio.create_task(self._read_acks(call, in_flight, slots))
        try:
            last_sent = 0
            while not reader.done():
                batch = await self._buffer.after(last_sent, self._window)
                if not batch:
                    self._buffer.added.clear()
                    waiter = asyncio.create_task(self._buffer.added.wait())
                    await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    continue
                for entry in batch:
                    await slots.acquire()
                    if reader.done():
                        break
                    in_flight.append(entry.seq)
                    frame = frame_pb2.Frame.FromString(entry.payload)
                    outbox.put_nowait(ingest_service_pb2.PushFramesRequest(frame=frame))
                    metrics.FRAMES_SENT.inc()
                    last_sent = entry.seq
            await reader  # raises what ended the stream
        finally:
            if not reader.done():
                reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError, _Throttled, _LinkClosed):
                await reader
            outbox.put_nowait(None)
            call.cancel()

    async def _read_acks(
        self,
        call: grpc.aio.StreamStreamCall[ingest_service_pb2.PushFramesRequest, ingest_service_pb2.PushFramesResponse],
        in_flight: deque[int],
        slots: asyncio.Semaphore,
    ) -> None:
        try:
            await self._consume(call, in_flight, slots)
        finally:
            for _ in range(self._window):  # wake a writer waiting for a slot so it sees the stream ended
                slots.release()
        raise _LinkClosed

    async def _consume(
        self,
        call: grpc.aio.StreamStreamCall[ingest_service_pb2.PushFramesRequest, ingest_service_pb2.PushFramesResponse],
        in_flight: deque[int],
        slots: asyncio.Semaphore,
    ) -> None:
        async for reply in call:
            if not self.connected.is_set():  # the first answer proves the link (wait_for_connection cannot be
                self.connected.set()  # combined with iterating the replies)
                metrics.LINK_UP.set(1)
            seq = in_flight.popleft()
            ack = reply.ack
            metrics.FRAMES_ACKED.labels(_STATUS_NAMES.get(ack.status, "unknown")).inc()
            if ack.status == frame_pb2.FRAME_STATUS_THROTTLED:
                # Keep this frame and everything after it; resend from here after the pause ingest asked for.
                raise _Throttled(max(ack.retry_after.ToNanoseconds() / 1e9, 0.1))
            if ack.status == frame_pb2.FRAME_STATUS_REJECTED:
                log.warning("ingest refused a frame: %s", ack.message)
            await self._buffer.remove([seq])
            slots.release()
