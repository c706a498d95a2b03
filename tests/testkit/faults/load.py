"""A steady camera load over PushFrames, and the ledger of every frame and pass.

Each camera sends vehicle passes at a fixed frame rate: ``frames_per_pass`` frames with one plate moving across the
view (:class:`testkit.passes.PassScript`), then ``gap_frames`` empty frames, then the next pass with another plate.
Frames are captured on schedule whatever ingest does, and sent like the edge agent sends them
(:mod:`anpr.edge.uplink`): up to ``window`` unanswered frames on one stream; a frame is forgotten only once ingest
answered it; a broken stream is reopened and every unanswered frame is sent again; THROTTLED keeps the frame and
everything after it, and the camera waits the ``retry_after`` ingest asked for.

The ledger keeps what ingest answered for each frame: a pass whose frame was acknowledged ACCEPTED (or DUPLICATE,
which says ingest had accepted it before) is a pass ingest took responsibility for.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import grpc.aio
from google.protobuf import timestamp_pb2

from anpr.api.common.v1 import image_pb2
from anpr.api.ingest.v1 import frame_pb2, ingest_service_pb2, ingest_service_pb2_grpc
from testkit.passes import PassScript
from testkit.scenes import render_scene

# No plate of the load may match the hotlist entry of another pass, not even by the hotlist's edit-distance-1 rule
# (a pass would raise two alerts, and the next one's be suppressed as a repeat): hotlisted and other plates differ in
# two leading letters of no OCR confusion class, and a check digit follows the five-digit number, so two plates
# differ in at least two places.
HOTLISTED_PREFIX = "XY"
OTHER_PREFIX = "CA"
_plate_numbers = itertools.count(random.Random().randrange(100_000))  # unique plates: 100 000 per process


def _plate(prefix: str) -> str:
    digits = f"{next(_plate_numbers) % 100_000:05d}"
    return f"{prefix}{digits}{sum(map(int, digits)) % 10}"


_ANSWERED = frozenset({frame_pb2.FRAME_STATUS_ACCEPTED, frame_pb2.FRAME_STATUS_DUPLICATE})


@dataclass(frozen=True)
class LoadShape:
    """How many cameras send what."""

    cameras: int = 4
    fps: float = 2.0  # per camera
    frames_per_pass: int = 5
    gap_frames: int = 3  # empty frames between passes: the capture-time gap that ends a pass in ingest
    seconds: float = 20.0  # how long the cameras capture
    hotlisted_every: int = 2  # every n-th pass of a camera shows a hotlisted plate

    @property
    def cycle_seconds(self) -> float:
        """One pass plus its gap."""
        return (self.frames_per_pass + self.gap_frames) / self.fps

    @property
    def frames_per_second(self) -> float:
        """Offered load, all cameras together."""
        return self.cameras * self.fps


@dataclass
class Pass:
    """One vehicle pass of one camera."""

    camera_id: str
    plate: str
    hotlisted: bool
    frames: list[FrameRecord] = field(default_factory=list)
    readable: bool = True  # the recogniser reads it when nothing fails (set by the baseline)

    @property
    def first_capture(self) -> float:
        """Capture time of its first frame (seconds since the epoch; 0 before it was captured)."""
        return self.frames[0].capture_time

    @property
    def last_capture(self) -> float:
        """Capture time of its last frame."""
        return self.frames[-1].capture_time

    @property
    def accepted(self) -> bool:
        """Whether ingest took responsibility for any of its frames."""
        return any(f.accepted_at is not None for f in self.frames)


@dataclass
class FrameRecord:
    """One frame and what ingest answered for it."""

    camera_id: str
    frame_id: str
    image: bytes
    vehicle: Pass | None  # None for the empty frames between passes
    capture_time: float = 0.0  # set when the camera captures it
    accepted_at: float | None = None  # first ACCEPTED or DUPLICATE answer (time.time())
    answers: Counter[str] = field(default_factory=Counter)  # status name -> how often

    def message(self) -> ingest_service_pb2.PushFramesRequest:
        """The PushFrames message (the same bytes every time it is sent again)."""
        stamp = timestamp_pb2.Timestamp()
        stamp.FromNanoseconds(round(self.capture_time * 1e9))
        frame = frame_pb2.Frame(
            camera_id=self.camera_id,
            frame_id=self.frame_id,
            capture_time=stamp,
            image=image_pb2.EncodedImage(data=self.image, encoding=image_pb2.IMAGE_ENCODING_JPEG),
        )
        return ingest_service_pb2.PushFramesRequest(frame=frame)


@dataclass
class Ledger:
    """Every pass and frame of a run, per camera in capture order."""

    passes: list[Pass] = field(default_factory=list)
    frames: dict[str, list[FrameRecord]] = field(default_factory=dict)  # camera id -> frames
    reconnects: int = 0  # streams reopened after an error or an end

    def answers(self) -> Counter[str]:
        """Answers by status over all frames (a resent frame counts each answer)."""
        total: Counter[str] = Counter()
        for frames in self.frames.values():
            for record in frames:
                total.update(record.answers)
        return total

    @property
    def captured(self) -> list[FrameRecord]:
        """Frames the cameras captured so far."""
        return [f for frames in self.frames.values() for f in frames if f.capture_time]


_EMPTY_FRAME = b""


def plan(camera_ids: list[str], shape: LoadShape) -> Ledger:
    """Render every pass the cameras will send (before the run, so the cameras only send)."""
    global _EMPTY_FRAME
    if not _EMPTY_FRAME:
        _EMPTY_FRAME = render_scene([])
    passes_per_camera = int(shape.seconds / shape.cycle_seconds) + 1
    ledger = Ledger()
    script = PassScript()
    script.add_pass("?", 0, shape.frames_per_pass - 1)  # only for the boxes: where the plate is in each frame
    boxes = [script.plates_by_frame[n][0][1] for n in range(shape.frames_per_pass)]
    for camera_id in camera_ids:
        frames: list[FrameRecord] = []
        for number in range(passes_per_camera):
            hotlisted = number % shape.hotlisted_every == 0
            plate = _plate(HOTLISTED_PREFIX if hotlisted else OTHER_PREFIX)
            vehicle = Pass(camera_id, plate, hotlisted)
            for box in boxes:
                record = FrameRecord(camera_id, f"{camera_id}-{len(frames):06d}", render_scene([(plate, box)]), vehicle)
                vehicle.frames.append(record)
                frames.append(record)
            for _ in range(shape.gap_frames):
                frames.append(FrameRecord(camera_id, f"{camera_id}-{len(frames):06d}", _EMPTY_FRAME, None))
            ledger.passes.append(vehicle)
        ledger.frames[camera_id] = frames
    return ledger


class _Throttled(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"throttled for {seconds:.2f} s")
        self.seconds = seconds


class CameraLink:
    """One camera: captures its frames on schedule and keeps a PushFrames stream sending them."""

    def __init__(
        self,
        frames: list[FrameRecord],
        stub: ingest_service_pb2_grpc.IngestServiceAsyncStub,
        metadata: tuple[tuple[str, str], ...],
        ledger: Ledger,
        *,
        window: int = 16,
    ) -> None:
        self._frames = frames
        self._stub = stub
        self._metadata = metadata
        self._ledger = ledger
        self._window = window
        self._outbox: deque[FrameRecord] = deque()  # captured and not answered yet, in order
        self._changed = asyncio.Event()
        self._sent = 0
        self.captured_all = asyncio.Event()

    @property
    def unanswered(self) -> int:
        """Frames captured and not answered by ingest yet."""
        return len(self._outbox)

    async def capture(self, fps: float, start: float, limit: float) -> None:
        """Capture frames at ``fps`` from ``start`` (loop time) for at most ``limit`` seconds, in whole passes."""
        loop = asyncio.get_running_loop()
        for n, record in enumerate(self._frames):
            if n / fps >= limit - 1e-6 and (record.vehicle is None or record is record.vehicle.frames[0]):
                break  # never cut a pass: stop before the next one begins
            await asyncio.sleep(max(0.0, start + n / fps - loop.time()))
            record.capture_time = time.time()
            self._outbox.append(record)
            self._changed.set()
        self.captured_all.set()

    async def send(self) -> None:
        """Keep a stream open and drain the outbox through it, until cancelled."""
        delay = 0.1
        while True:
            try:
                await self._stream()
                delay = 0.1
            except _Throttled as throttled:
                await asyncio.sleep(throttled.seconds)
                continue
            except grpc.aio.AioRpcError:
                pass
            self._ledger.reconnects += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _stream(self) -> None:
        outgoing: asyncio.Queue[ingest_service_pb2.PushFramesRequest | None] = asyncio.Queue()

        async def requests() -> AsyncIterator[ingest_service_pb2.PushFramesRequest]:
            while (request := await outgoing.get()) is not None:
                yield request

        call = self._stub.PushFrames(requests(), metadata=self._metadata)
        self._sent = 0  # the first _sent frames of the outbox went out on this stream and wait for answers
        reader = asyncio.create_task(self._answers(call))
        try:
            while not reader.done():
                if self._sent < min(self._window, len(self._outbox)):
                    outgoing.put_nowait(self._outbox[self._sent].message())
                    self._sent += 1
                    continue
                self._changed.clear()
                waiter = asyncio.create_task(self._changed.wait())
                try:
                    await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
            await reader  # raises what ended the stream
        finally:
            outgoing.put_nowait(None)
            call.cancel()
            if not reader.done():
                reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError, _Throttled):
                await reader

    async def _answers(
        self,
        call: grpc.aio.StreamStreamCall[ingest_service_pb2.PushFramesRequest, ingest_service_pb2.PushFramesResponse],
    ) -> None:
        async for reply in call:
            ack = reply.ack
            record = self._outbox[0]
            assert ack.frame_id == record.frame_id, f"answer for {ack.frame_id} while {record.frame_id} was first"
            record.answers[frame_pb2.FrameStatus.Name(ack.status).removeprefix("FRAME_STATUS_")] += 1
            if ack.status == frame_pb2.FRAME_STATUS_THROTTLED:
                raise _Throttled(max(ack.retry_after.ToNanoseconds() / 1e9, 0.05))
            if ack.status in _ANSWERED and record.accepted_at is None:
                record.accepted_at = time.time()
            self._outbox.popleft()  # ACCEPTED, DUPLICATE or REJECTED: ingest answered for good
            self._sent -= 1
            self._changed.set()


class Fleet:
    """All cameras of a run: start capturing and sending, wait until everything captured was answered."""

    def __init__(
        self,
        ledger: Ledger,
        stub: ingest_service_pb2_grpc.IngestServiceAsyncStub,
        metadata: tuple[tuple[str, str], ...],
    ) -> None:
        self.ledger = ledger
        self.links = [CameraLink(frames, stub, metadata, ledger) for frames in ledger.frames.values()]
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, shape: LoadShape) -> None:
        """Cameras start one after another over one pass cycle, so passes do not all end at the same moment."""
        now = asyncio.get_running_loop().time()
        for n, link in enumerate(self.links):
            offset = shape.cycle_seconds * n / len(self.links)
            self._tasks.append(asyncio.create_task(link.capture(shape.fps, now + offset, shape.seconds)))
            self._tasks.append(asyncio.create_task(link.send()))

    async def captured(self) -> None:
        """Until every camera captured its last frame."""
        await asyncio.gather(*(link.captured_all.wait() for link in self.links))

    def unanswered(self) -> int:
        """Frames captured and not answered yet, all cameras."""
        return sum(link.unanswered for link in self.links)

    async def stop(self) -> None:
        """Stop capturing and sending."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
