"""Frame admission: the checks a frame passes before it is queued for recognition.

Order matters for the caller: a frame that will never be accepted (unknown camera, malformed, too large) is
refused before it counts against the camera's rate, and a duplicate is recognised before the rate limit so an
edge agent resending after a lost acknowledgement is not throttled for it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum

from anpr.api.ingest.v1 import camera_pb2, frame_pb2

_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM")


class Verdict(Enum):
    """What admission decided."""

    ACCEPT = "accept"
    DUPLICATE = "duplicate"
    REJECT = "reject"
    THROTTLE = "throttle"


@dataclass(frozen=True)
class Decision:
    """A verdict with its proto reason, a message for the caller and, when throttled, a retry delay."""

    verdict: Verdict
    reason: frame_pb2.FrameRejectReason.ValueType = frame_pb2.FRAME_REJECT_REASON_UNSPECIFIED
    message: str = ""
    retry_after: float = 0.0

    @classmethod
    def reject(cls, reason: frame_pb2.FrameRejectReason.ValueType, message: str) -> Decision:
        return cls(Verdict.REJECT, reason, message)


ACCEPTED = Decision(Verdict.ACCEPT)
DUPLICATE = Decision(Verdict.DUPLICATE)


class TokenBucket:
    """Rate limiter: ``rate`` tokens per second, holding at most ``burst`` tokens."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._tokens = self.burst
        self._stamp = time.monotonic()

    def take(self, now: float | None = None) -> float:
        """0 when a token was taken, else seconds until one will be available."""
        now = time.monotonic() if now is None else now
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate

    def reconfigure(self, rate: float, burst: float) -> None:
        """Apply changed camera limits without resetting the bucket."""
        self.rate, self.burst = rate, max(burst, 1.0)


class DedupeWindow:
    """Remembers recently accepted (camera, frame id) pairs, bounded both in count and in age."""

    def __init__(self, max_entries: int, max_age_seconds: float) -> None:
        self._max_entries = max_entries
        self._max_age = max_age_seconds
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()

    def seen(self, camera_id: str, frame_id: str, now: float | None = None) -> bool:
        """Whether the pair was accepted within the window."""
        now = time.monotonic() if now is None else now
        self._evict(now)
        return (camera_id, frame_id) in self._seen

    def remember(self, camera_id: str, frame_id: str, now: float | None = None) -> None:
        """Record an accepted frame."""
        now = time.monotonic() if now is None else now
        self._seen[(camera_id, frame_id)] = now
        self._seen.move_to_end((camera_id, frame_id))
        self._evict(now)

    def forget(self, camera_id: str, frame_id: str) -> None:
        """Drop a pair (the frame was accepted but then could not be queued)."""
        self._seen.pop((camera_id, frame_id), None)

    def _evict(self, now: float) -> None:
        while self._seen and (
            len(self._seen) > self._max_entries or next(iter(self._seen.values())) < now - self._max_age
        ):
            self._seen.popitem(last=False)


def check_frame(
    frame: frame_pb2.Frame,
    camera: camera_pb2.Camera | None,
    *,
    max_frame_bytes: int,
    max_age_seconds: float,
    max_skew_seconds: float,
    now: float | None = None,
) -> Decision | None:
    """The refusal for a frame that can never be accepted as sent, or None when it may proceed."""
    if not frame.camera_id:
        return Decision.reject(frame_pb2.FRAME_REJECT_REASON_INVALID_FRAME, "frame.camera_id is required")
    if camera is None:
        return Decision.reject(
            frame_pb2.FRAME_REJECT_REASON_UNKNOWN_CAMERA, f"camera {frame.camera_id} is not registered"
        )
    if camera.disabled:
        return Decision.reject(frame_pb2.FRAME_REJECT_REASON_CAMERA_DISABLED, f"camera {frame.camera_id} is disabled")
    if not 1 <= len(frame.frame_id) <= 128:
        return Decision.reject(frame_pb2.FRAME_REJECT_REASON_INVALID_FRAME, "frame.frame_id must be 1-128 characters")
    if not frame.HasField("capture_time"):
        return Decision.reject(frame_pb2.FRAME_REJECT_REASON_INVALID_FRAME, "frame.capture_time is required")
    data = frame.image.data
    if not data:
        return Decision.reject(frame_pb2.FRAME_REJECT_REASON_INVALID_IMAGE, "frame.image.data is empty")
    limit = camera.limits.max_frame_bytes or max_frame_bytes
    if len(data) > limit:
        return Decision.reject(
            frame_pb2.FRAME_REJECT_REASON_FRAME_TOO_LARGE, f"frame is {len(data)} bytes; the limit is {limit}"
        )
    if not (data.startswith(_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")):
        return Decision.reject(
            frame_pb2.FRAME_REJECT_REASON_INVALID_IMAGE, "frame.image.data is not a JPEG, PNG, WebP or BMP image"
        )
    now = time.time() if now is None else now
    captured = frame.capture_time.ToNanoseconds() / 1e9
    if captured > now + max_skew_seconds:
        return Decision.reject(
            frame_pb2.FRAME_REJECT_REASON_CAPTURE_TIME_OUT_OF_RANGE,
            f"capture_time is {captured - now:.0f} s in the future; check the camera clock",
        )
    if captured < now - max_age_seconds:
        return Decision.reject(
            frame_pb2.FRAME_REJECT_REASON_CAPTURE_TIME_OUT_OF_RANGE,
            f"capture_time is older than the accepted {max_age_seconds:.0f} s",
        )
    return None
