"""Frame intake shared by SubmitFrame, PushFrames and pulled sources: admission, then the pipeline queue."""

from __future__ import annotations

from anpr.api.ingest.v1 import camera_pb2, frame_pb2
from anpr.ingest import metrics
from anpr.ingest.admission import (
    ACCEPTED,
    DUPLICATE,
    Decision,
    DedupeWindow,
    TokenBucket,
    Verdict,
    check_frame,
)
from anpr.ingest.convert import gps_from_proto
from anpr.ingest.directory import CameraDirectory
from anpr.ingest.pipeline import FramePipeline, JournalUnavailable
from anpr.ingest.recognition import PendingFrame
from anpr.ingest.settings import IngestSettings
from anpr.runtime import tracing

REASON_LABELS = {
    value: name.removeprefix("FRAME_REJECT_REASON_").lower() for name, value in frame_pb2.FrameRejectReason.items()
}
KIND_LABELS = {value: name.removeprefix("CAMERA_KIND_").lower() for name, value in camera_pb2.CameraKind.items()}
STATUS_LABELS = {value: name.removeprefix("FRAME_STATUS_").lower() for name, value in frame_pb2.FrameStatus.items()}


# Not the camera's fault: it keeps the frame and sends it again after retry_after.
_OVERLOADED = Decision(
    Verdict.THROTTLE,
    frame_pb2.FRAME_REJECT_REASON_OVERLOADED,
    "ingest is overloaded: recognition is behind; keep the frame and retry later",
    1.0,
)
_CATCHING_UP = Decision(
    Verdict.THROTTLE,
    frame_pb2.FRAME_REJECT_REASON_OVERLOADED,
    "ingest is recognising the frames it accepted before a restart; keep the frame and retry later",
    1.0,
)


class FrameIntake:
    """Decides about each frame and queues the accepted ones."""

    def __init__(self, settings: IngestSettings, directory: CameraDirectory, pipeline: FramePipeline) -> None:
        self._settings = settings
        self._directory = directory
        self._pipeline = pipeline
        self._dedupe = DedupeWindow(settings.dedupe_window_frames, settings.dedupe_window_seconds)
        self._buckets: dict[str, TokenBucket] = {}

    async def submit(self, frame: frame_pb2.Frame, transport: str, wait: bool = True) -> frame_pb2.FrameAck:
        """Admit one frame; the acknowledgement says what happened."""
        metrics.FRAMES_RECEIVED.labels(transport).inc()
        camera = await self._directory.get(frame.camera_id) if frame.camera_id else None
        decision = await self._decide(frame, camera, wait)
        if decision.verdict is Verdict.THROTTLE:
            self._pipeline.camera_held(frame.camera_id)
        ack = frame_pb2.FrameAck(camera_id=frame.camera_id, frame_id=frame.frame_id, message=decision.message)
        if decision.verdict is Verdict.ACCEPT:
            ack.status = frame_pb2.FRAME_STATUS_ACCEPTED
            metrics.FRAMES_ACCEPTED.inc()
        elif decision.verdict is Verdict.DUPLICATE:
            ack.status = frame_pb2.FRAME_STATUS_DUPLICATE
            metrics.FRAMES_DUPLICATE.inc()
        else:
            ack.status = (
                frame_pb2.FRAME_STATUS_THROTTLED
                if decision.verdict is Verdict.THROTTLE
                else frame_pb2.FRAME_STATUS_REJECTED
            )
            ack.reason = decision.reason
            metrics.FRAMES_REJECTED.labels(REASON_LABELS.get(decision.reason, "unknown")).inc()
            if decision.retry_after > 0:
                ack.retry_after.FromNanoseconds(round(decision.retry_after * 1e9))
        kind = "unregistered" if camera is None else KIND_LABELS.get(camera.kind, "unspecified")
        metrics.CAMERA_FRAMES.labels(kind, STATUS_LABELS.get(ack.status, "unspecified")).inc()
        return ack

    async def _decide(self, frame: frame_pb2.Frame, camera: camera_pb2.Camera | None, wait: bool) -> Decision:
        settings = self._settings
        refusal = check_frame(
            frame,
            camera,
            max_frame_bytes=settings.default_max_frame_bytes,
            max_age_seconds=settings.max_frame_age_seconds,
            max_skew_seconds=settings.max_clock_skew_seconds,
        )
        if refusal is not None:
            return refusal
        assert camera is not None
        if self._dedupe.seen(frame.camera_id, frame.frame_id):
            return DUPLICATE
        if self._pipeline.replaying:
            return _CATCHING_UP
        rate = camera.limits.max_frames_per_second or settings.default_max_frames_per_second
        bucket = self._buckets.get(frame.camera_id)
        if bucket is None:
            bucket = self._buckets[frame.camera_id] = TokenBucket(rate, rate * settings.rate_burst_seconds)
        else:
            bucket.reconfigure(rate, rate * settings.rate_burst_seconds)
        retry_after = bucket.take()
        if retry_after > 0:
            return Decision(
                Verdict.THROTTLE,
                frame_pb2.FRAME_REJECT_REASON_RATE_LIMITED,
                f"camera {frame.camera_id} exceeds its limit of {rate:g} frames per second",
                retry_after,
            )
        # Remember before queueing: a resubmission racing this one is then a duplicate, not a second pass read.
        self._dedupe.remember(frame.camera_id, frame.frame_id)
        captured = frame.capture_time.ToNanoseconds() / 1e9
        with tracing.frame_span(frame.camera_id, frame.frame_id) as origin:
            pending = PendingFrame(
                camera_id=frame.camera_id,
                frame_id=frame.frame_id,
                capture_time=captured,
                image=frame.image.data,
                encoding=frame.image.encoding,
                gps=gps_from_proto(frame.gps) if frame.HasField("gps") else None,
                plate_regions=tuple(camera.plate_regions),
                plate_crop=camera.sends_plate_crops,
                origin=origin,
            )
            try:
                accepted = await self._pipeline.accept(pending, settings.overload_wait_seconds if wait else 0.0)
            except JournalUnavailable:
                accepted = False
        if not accepted:
            self._dedupe.forget(frame.camera_id, frame.frame_id)
            return _OVERLOADED
        self._directory.frame_arrived(frame.camera_id, captured)
        return ACCEPTED

    def replayed(self, frame: PendingFrame) -> None:
        """A frame journaled before a restart is queued again: a resend of it is a duplicate."""
        self._dedupe.remember(frame.camera_id, frame.frame_id)
        self._directory.frame_arrived(frame.camera_id, frame.capture_time)

    def forget_camera(self, camera_id: str) -> None:
        """Drop per-camera state (after the camera was deleted or changed)."""
        self._buckets.pop(camera_id, None)
        self._directory.invalidate(camera_id)
