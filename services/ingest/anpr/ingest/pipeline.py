"""The frame path after admission: the journal, a bounded queue, batched recognition, tracking, emission.

Accepted frames are journaled on disk first (:mod:`anpr.ingest.journal`), so nothing here may lose one: a batch
recognize cannot take now waits and goes again, a batch it refuses is split so only the bad frame fails, and a frame
leaves the journal only once the plate events it can contribute to are spooled.

Three tasks:

* the *batcher* takes frames from the queue and starts a Recognize call per batch (at most ``concurrency`` at once,
  so several recognize replicas work in parallel);
* the *sequencer* awaits those calls in the order they were started and feeds the results to the tracker, so each
  camera's frames reach the tracker in arrival order even though calls finish out of order;
* the *sweeper* ends passes of cameras that stopped sending frames (capture time estimated from the last frame).

Admission is bounded twice: by ``max_pending`` frames (memory) and by ``max_queue_seconds``, the age of the oldest
frame not yet recognised. The second turns "recognition is behind" into THROTTLED answers to cameras (which keep
their frames) instead of a queue that grows until calls time out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

from anpr.api.recognize.v1 import recognition_pb2
from anpr.ingest import metrics
from anpr.ingest.convert import frame_reads
from anpr.ingest.directory import CameraDirectory
from anpr.ingest.emitter import EventEmitter
from anpr.ingest.journal import FrameJournal, FrameLedger
from anpr.ingest.recognition import PendingFrame, RecognitionClient, RecognitionFailed
from anpr.ingest.tracking.model import PassEvent
from anpr.ingest.tracking.tracker import PassTracker
from anpr.runtime import tracing
from anpr.runtime.tracing import Origin

log = logging.getLogger(__name__)

# A frame, its result (None: recognize refused it) and the model set that read it.
_Outcome = tuple[PendingFrame, recognition_pb2.ImageResult | None, str]
_Batch = tuple[list[PendingFrame], "asyncio.Task[list[_Outcome]]"]
# How long after being throttled a camera counts as holding frames (it retries after about a second).
_HELD_SECONDS = 3.0


class JournalUnavailable(Exception):
    """The frame could not be written to the journal (disk full or failing); it was not accepted."""


class FramePipeline:
    """Owns the journal's frames in memory and the three tasks; :meth:`start`, then :meth:`stop`."""

    def __init__(
        self,
        recognition: RecognitionClient,
        tracker: PassTracker,
        emitter: EventEmitter,
        directory: CameraDirectory,
        journal: FrameJournal,
        *,
        max_pending: int = 256,
        max_queue_seconds: float = 5.0,
        journal_max_hold_seconds: float = 120.0,
        batch_size: int = 16,
        batch_wait_seconds: float = 0.02,
        concurrency: int = 4,
    ) -> None:
        self._recognition = recognition
        self._tracker = tracker
        self._emitter = emitter
        self._directory = directory
        self._journal = journal
        self._queue: asyncio.Queue[PendingFrame] = asyncio.Queue()  # bounded by _room
        self._room = asyncio.Semaphore(max_pending)  # accepted frames not yet through the tracker
        self._max_queue_seconds = max_queue_seconds
        self._batch_size = batch_size
        self._batch_wait = batch_wait_seconds
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight: asyncio.Queue[_Batch] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._track_lock = asyncio.Lock()  # the sequencer and sweeper both touch the tracker
        self._ledger = FrameLedger(journal_max_hold_seconds)
        # Accepted frames not yet through the tracker, oldest first (monotonic acceptance time), and per camera.
        # While a camera has any, its passes must not be ended by the sweeper: their next reads may simply be
        # waiting for recognition (a loaded system).
        self._waiting_since: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._unprocessed: dict[str, int] = {}
        # Cameras told to hold their frames (THROTTLED), with when: their passes go on in frames not sent yet.
        self._held_since: dict[str, float] = {}
        self._none_waiting = asyncio.Event()
        self._none_waiting.set()
        self._replay: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Frames accepted and not yet through the tracker."""
        return len(self._waiting_since)

    @property
    def replaying(self) -> bool:
        """Frames journaled before a restart are still being queued again (new frames must wait)."""
        return self._replay is not None and not self._replay.done()

    def oldest_pending_seconds(self) -> float:
        """How long the oldest accepted frame has waited for recognition (0 when none)."""
        if not self._waiting_since:
            return 0.0
        return time.monotonic() - next(iter(self._waiting_since.values()))

    def overloaded(self) -> bool:
        """Recognition is so far behind that new frames should wait at the camera."""
        return self.oldest_pending_seconds() > self._max_queue_seconds

    def camera_busy(self, camera_id: str) -> bool:
        """The camera has frames on their way or a pass in progress (its next frames belong to that pass)."""
        return self._frames_outstanding(camera_id) or self._tracker.active_tracks(camera_id) > 0

    def _frames_outstanding(self, camera_id: str) -> bool:
        # Frames in recognition, or held at the camera after a THROTTLED answer: either way the time since its last
        # accepted frame is no sign that a plate left.
        return camera_id in self._unprocessed or self._holding_frames(camera_id)

    def camera_held(self, camera_id: str) -> None:
        """The camera was told to keep its frames and send them later (THROTTLED)."""
        self._held_since[camera_id] = time.monotonic()

    def _holding_frames(self, camera_id: str) -> bool:
        # A camera that was throttled has frames of its passes waiting on its side: the time since its last
        # accepted frame is no sign that the plate left. Measured without this: a 5 s recognize outage split a pass.
        held = self._held_since.get(camera_id)
        if held is None:
            return False
        if time.monotonic() - held < _HELD_SECONDS:
            return True
        del self._held_since[camera_id]
        return False

    async def accept(self, frame: PendingFrame, wait_seconds: float) -> bool:
        """Journal and queue ``frame``, waiting up to ``wait_seconds`` for room; False when there was none.

        Raises :class:`JournalUnavailable` when the frame could not be stored.
        """
        if self.overloaded():
            return False
        if self._room.locked() and wait_seconds <= 0:
            return False
        try:
            await asyncio.wait_for(self._room.acquire(), timeout=max(wait_seconds, 0.001))
        except TimeoutError:
            return False
        try:
            journaled = await self._journal.append(frame)
        except (OSError, sqlite3.Error) as exc:
            self._room.release()
            log.error("cannot write the frame journal: %s", exc)
            raise JournalUnavailable(str(exc)) from exc
        self._enqueue(journaled)
        return True

    def _enqueue(self, frame: PendingFrame) -> None:
        self._none_waiting.clear()
        self._waiting_since[(frame.camera_id, frame.frame_id)] = time.monotonic()
        self._unprocessed[frame.camera_id] = self._unprocessed.get(frame.camera_id, 0) + 1
        self._queue.put_nowait(frame)
        metrics.PENDING_FRAMES.set(len(self._waiting_since))
        metrics.JOURNAL_FRAMES.inc()

    def _processed(self, frames: Iterable[PendingFrame]) -> None:
        for frame in frames:
            self._ledger.processed(frame)
            self._waiting_since.pop((frame.camera_id, frame.frame_id), None)
            self._room.release()
            left = self._unprocessed.get(frame.camera_id, 0) - 1
            if left > 0:
                self._unprocessed[frame.camera_id] = left
            else:
                self._unprocessed.pop(frame.camera_id, None)
        metrics.PENDING_FRAMES.set(len(self._waiting_since))
        if not self._waiting_since:
            self._none_waiting.set()

    def start(self, on_replayed: Callable[[PendingFrame], None] = lambda frame: None) -> None:
        """Start the tasks; frames left in the journal by the last run are recognised first, in order."""
        for name, coroutine in (("batcher", self._batcher), ("sequencer", self._sequencer), ("sweeper", self._sweeper)):
            self._tasks.append(asyncio.create_task(coroutine(), name=f"ingest-{name}"))
        self._replay = asyncio.create_task(self._replay_journal(on_replayed), name="ingest-replay")

    async def _replay_journal(self, on_replayed: Callable[[PendingFrame], None]) -> None:
        frames = await self._journal.unreleased()
        metrics.JOURNAL_FRAMES.set(0)
        if frames:
            log.info("recognising frames journaled before the restart", extra={"frames": len(frames)})
        for frame in frames:
            await self._room.acquire()
            on_replayed(frame)
            self._enqueue(frame)
            metrics.FRAMES_REPLAYED.inc()

    async def stop(self, finish_seconds: float = 5.0) -> None:
        """Finish the accepted frames (within ``finish_seconds``), end open passes; safe to call twice.

        Frames not recognised in time stay in the journal and are recognised at the next start.
        """
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        if self._replay is not None:
            self._replay.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._none_waiting.wait(), finish_seconds)
        if self._waiting_since:
            log.warning("frames left for the next start", extra={"frames": len(self._waiting_since)})
        for task in tasks:
            task.cancel()
        while not self._in_flight.empty():
            _, call = self._in_flight.get_nowait()
            call.cancel()
        # Bounded: a Recognize call to an unreachable replica may ignore cancellation until its channel closes.
        await asyncio.wait(tasks, timeout=2.0)
        # Passes still open would otherwise never get their final event; end them now.
        async with self._track_lock:
            if await self._emit(self._tracker.flush()):
                await self._release(self._ledger.cameras())

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
            for frame in frames:
                tracing.record_span("ingest.queue_wait", frame.origin)
            await self._slots.acquire()
            call = asyncio.create_task(self._recognise(frames))
            call.add_done_callback(lambda _: self._slots.release())
            await self._in_flight.put((frames, call))

    async def _recognise(self, frames: list[PendingFrame]) -> list[_Outcome]:
        try:
            response = await self._recognition.recognize(frames)
            model = f"{response.model.name} {response.model.version}".strip()
            return [(frame, result, model) for frame, result in zip(frames, response.results, strict=True)]
        except RecognitionFailed as failure:
            if len(frames) == 1:
                metrics.FRAMES_UNRECOGNISED.labels(failure.code.name).inc()
                log.warning("recognize refused a frame", extra={"error": str(failure)})
                return [(frames[0], None, "")]
        # Refused as a batch: one frame at a time, so that only a bad frame fails.
        outcomes: list[_Outcome] = []
        for frame in frames:
            outcomes.extend(await self._recognise([frame]))
        return outcomes

    async def _sequencer(self) -> None:
        while True:
            frames, call = await self._in_flight.get()
            outcomes = await call
            async with self._track_lock:
                events = []
                origins = []  # the frame each event came from, for its trace
                for frame, result, model in outcomes:
                    if result is None:
                        continue
                    if result.HasField("error"):
                        metrics.FRAMES_UNRECOGNISED.labels(f"image_error_{result.error.reason}").inc()
                        continue
                    reads = frame_reads(
                        frame.camera_id, frame.frame_id, frame.capture_time, result, frame.gps, model, frame.plate_crop
                    )
                    observed = self._tracker.observe(reads)
                    events.extend(observed)
                    origins.extend([frame.origin] * len(observed))
                self._processed(frames)
                if await self._emit(events, origins):
                    await self._release({frame.camera_id for frame in frames})

    async def _emit(self, events: list[PassEvent], origins: Sequence[Origin | None] = ()) -> bool:
        try:
            await self._emitter.emit(events, origins)
        except Exception:
            # Keep the pipeline alive; the frames stay journaled, so a restart emits these events again.
            log.exception("could not emit %d plate events", len(events))
            return False
        return True

    async def _release(self, cameras: Iterable[str]) -> None:
        seqs = [
            seq
            for camera_id in cameras
            for seq in self._ledger.releasable(camera_id, self._tracker.open_pass_starts(camera_id))
        ]
        try:
            await self._journal.release(seqs)
        except (OSError, sqlite3.Error) as exc:
            log.error("cannot release frames from the journal (they will be recognised again): %s", exc)
            return
        metrics.JOURNAL_FRAMES.dec(len(seqs))

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            metrics.OLDEST_PENDING_SECONDS.set(self.oldest_pending_seconds())
            async with self._track_lock:
                events = []
                expired = []
                for camera_id in self._tracker.cameras():
                    if self._frames_outstanding(camera_id):
                        continue
                    last = self._directory.last_frame(camera_id)
                    if last is None:
                        continue
                    # The camera's clock "now": its last capture time plus the time since that frame arrived.
                    now = last[0] + (time.monotonic() - last[1])
                    ended = self._tracker.expire(camera_id, now)
                    if ended:
                        events.extend(ended)
                        expired.append(camera_id)
                if await self._emit(events):
                    await self._release(expired)
