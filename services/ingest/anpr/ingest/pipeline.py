"""The frame path after admission: a bounded queue, batched recognition, tracking, emission.

Three tasks:

* the *batcher* takes frames from the bounded queue (the memory bound for every camera together) and starts a
  Recognize call per batch (at most ``concurrency`` at once, so several recognize replicas work in parallel);
* the *sequencer* awaits those calls in the order they were started and feeds the results to the tracker, so each
  camera's frames reach the tracker in arrival order even though calls finish out of order;
* the *sweeper* ends passes of cameras that stopped sending frames (capture time estimated from the last frame).
"""

from __future__ import annotations

import asyncio
import logging
import time

from anpr.api.recognize.v1 import recognize_service_pb2
from anpr.ingest import metrics
from anpr.ingest.convert import frame_reads
from anpr.ingest.directory import CameraDirectory
from anpr.ingest.emitter import EventEmitter
from anpr.ingest.recognition import PendingFrame, RecognitionClient, RecognitionFailed
from anpr.ingest.tracking.model import PassEvent
from anpr.ingest.tracking.tracker import PassTracker

log = logging.getLogger(__name__)

_Batch = tuple[list[PendingFrame], "asyncio.Task[recognize_service_pb2.RecognizeResponse]"]


class FramePipeline:
    """Owns the queue and the three tasks; start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(
        self,
        recognition: RecognitionClient,
        tracker: PassTracker,
        emitter: EventEmitter,
        directory: CameraDirectory,
        *,
        max_pending: int = 256,
        batch_size: int = 16,
        batch_wait_seconds: float = 0.02,
        concurrency: int = 4,
    ) -> None:
        self._recognition = recognition
        self._tracker = tracker
        self._emitter = emitter
        self._directory = directory
        self._queue: asyncio.Queue[PendingFrame] = asyncio.Queue(maxsize=max_pending)
        self._batch_size = batch_size
        self._batch_wait = batch_wait_seconds
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight: asyncio.Queue[_Batch] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._track_lock = asyncio.Lock()  # the sequencer and sweeper both touch the tracker
        # Frames per camera accepted but not yet through the tracker. While a camera has any, its passes must not
        # be ended by the sweeper: their next reads may simply be waiting for recognition (a loaded system).
        self._unprocessed: dict[str, int] = {}

    @property
    def pending(self) -> int:
        """Frames queued and not yet sent to recognition."""
        return self._queue.qsize()

    async def offer(self, frame: PendingFrame, wait_seconds: float) -> bool:
        """Queue a frame, waiting up to ``wait_seconds`` for room; False when the queue stayed full."""
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            if wait_seconds <= 0:
                return False
            try:
                await asyncio.wait_for(self._queue.put(frame), timeout=wait_seconds)
            except TimeoutError:
                return False
        metrics.PENDING_FRAMES.set(self._queue.qsize())
        self._unprocessed[frame.camera_id] = self._unprocessed.get(frame.camera_id, 0) + 1
        return True

    def _processed(self, frames: list[PendingFrame]) -> None:
        for frame in frames:
            left = self._unprocessed.get(frame.camera_id, 0) - 1
            if left > 0:
                self._unprocessed[frame.camera_id] = left
            else:
                self._unprocessed.pop(frame.camera_id, None)

    def start(self) -> None:
        """Start the tasks."""
        for name, coroutine in (("batcher", self._batcher), ("sequencer", self._sequencer), ("sweeper", self._sweeper)):
            self._tasks.append(asyncio.create_task(coroutine(), name=f"ingest-{name}"))

    async def stop(self) -> None:
        """Stop taking work, finish what is queued when possible, end open passes; safe to call twice."""
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        for task in tasks:
            task.cancel()
        while not self._in_flight.empty():
            _, call = self._in_flight.get_nowait()
            call.cancel()
        # Bounded: a Recognize call to an unreachable replica may ignore cancellation until its channel closes.
        await asyncio.wait(tasks, timeout=2.0)
        # Passes still open would otherwise never get their final event; end them now.
        async with self._track_lock:
            await self._emitter.emit(self._tracker.flush())

    async def _batcher(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            frames = [await self._queue.get()]
            deadline = loop.time() + self._batch_wait
            while len(frames) < self._batch_size:
                remaining = deadline - loop.time()
                try:
                    frames.append(
                        self._queue.get_nowait()
                        if remaining <= 0
                        else await asyncio.wait_for(self._queue.get(), remaining)
                    )
                except (asyncio.QueueEmpty, TimeoutError):
                    break
            metrics.PENDING_FRAMES.set(self._queue.qsize())
            await self._slots.acquire()
            call = asyncio.create_task(self._recognition.recognize(frames))
            call.add_done_callback(lambda _: self._slots.release())
            await self._in_flight.put((frames, call))

    async def _sequencer(self) -> None:
        while True:
            frames, call = await self._in_flight.get()
            try:
                response = await call
            except RecognitionFailed as failure:
                metrics.FRAMES_UNRECOGNISED.labels(failure.code.name).inc(len(frames))
                log.warning("recognition failed; frames dropped", extra={"frames": len(frames), "error": str(failure)})
                self._processed(frames)
                continue
            model = f"{response.model.name} {response.model.version}".strip()
            async with self._track_lock:
                events = []
                for frame, result in zip(frames, response.results, strict=True):
                    if result.HasField("error"):
                        metrics.FRAMES_UNRECOGNISED.labels(f"image_error_{result.error.reason}").inc()
                        continue
                    reads = frame_reads(frame.camera_id, frame.frame_id, frame.capture_time, result, frame.gps, model)
                    events.extend(self._tracker.observe(reads))
                self._processed(frames)
                await self._emit(events)

    async def _emit(self, events: list[PassEvent]) -> None:
        try:
            await self._emitter.emit(events)
        except Exception:
            # Keep the pipeline alive; the spool is the part that must not fail (disk full shows here).
            log.exception("could not emit %d plate events", len(events))

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            self._directory.refresh_gauges()
            async with self._track_lock:
                events = []
                for camera_id in self._tracker.cameras():
                    if camera_id in self._unprocessed:
                        continue
                    last = self._directory.last_frame(camera_id)
                    if last is None:
                        continue
                    # The camera's clock "now": its last capture time plus the time since that frame arrived.
                    now = last[0] + (time.monotonic() - last[1])
                    events.extend(self._tracker.expire(camera_id, now))
                await self._emit(events)
