"""Value types the tracker consumes (reads per frame) and produces (pass events)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels of the frame (origin top-left)."""

    x: float
    y: float
    width: float
    height: float

    @property
    def centre(self) -> tuple[float, float]:
        """Centre point."""
        return (self.x + self.width / 2, self.y + self.height / 2)

    @property
    def area(self) -> float:
        """Area in square pixels (0 for degenerate boxes)."""
        return max(self.width, 0.0) * max(self.height, 0.0)

    def shifted(self, dx: float, dy: float) -> Box:
        """The same box moved by (dx, dy)."""
        return Box(self.x + dx, self.y + dy, self.width, self.height)

    def iou(self, other: Box) -> float:
        """Intersection over union in [0, 1]."""
        left, top = max(self.x, other.x), max(self.y, other.y)
        right = min(self.x + self.width, other.x + other.width)
        bottom = min(self.y + self.height, other.y + other.height)
        inter = max(0.0, right - left) * max(0.0, bottom - top)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def centre_distance(self, other: Box) -> float:
        """Distance between the centres, in pixels."""
        (ax, ay), (bx, by) = self.centre, other.centre
        return math.hypot(ax - bx, ay - by)


@dataclass(frozen=True)
class Gps:
    """A GPS fix attached to a frame (mobile, dash and body cameras)."""

    latitude: float
    longitude: float
    accuracy_meters: float | None = None
    heading_degrees: float | None = None
    speed_meters_per_second: float | None = None


@dataclass(frozen=True)
class PlateRead:
    """One plate the recogniser found in one frame."""

    text: str
    confidence: float
    box: Box
    character_confidences: tuple[float, ...] = ()
    alternatives: tuple[tuple[str, float], ...] = ()
    crop: bytes | None = None
    # Runs of characters the reader saw but could not read (a bar across the plate): ``text`` is then only part
    # of the plate (``anpr.common.v1.PlateReading.hidden_characters``).
    hidden_characters: int = 0

    def weights(self) -> tuple[float, ...]:
        """Per-character vote weights: the character confidences when given, else the overall confidence."""
        if len(self.character_confidences) == len(self.text):
            return self.character_confidences
        return (self.confidence,) * len(self.text)


@dataclass(frozen=True)
class FrameReads:
    """Everything the recogniser found in one frame of one camera."""

    camera_id: str
    frame_id: str
    capture_time: float  # seconds since the epoch, by the camera's clock
    reads: tuple[PlateRead, ...] = ()
    gps: Gps | None = None
    model_version: str = ""
    # The camera sends plate crops (it found the plate itself, often one crop per vehicle): each read is then
    # evidence of a pass on its own.
    plate_crops: bool = False


class Stage(IntEnum):
    """Revision kind of a pass event; values match ``anpr.common.v1.PlateEventStage``."""

    EARLY = 1
    UPDATE = 2
    FINAL = 3


class Direction(IntEnum):
    """Travel direction; values match ``anpr.common.v1.TravelDirection``."""

    UNKNOWN = 0
    APPROACHING = 1
    RECEDING = 2
    STATIONARY = 3


@dataclass(frozen=True)
class PassEvent:
    """One revision of the event describing one vehicle pass."""

    event_id: str
    revision: int
    stage: Stage
    camera_id: str
    text: str
    confidence: float
    character_confidences: tuple[float, ...]
    alternatives: tuple[tuple[str, float], ...]
    best_frame_id: str
    best_box: Box
    best_crop: bytes | None
    first_seen: float
    last_seen: float
    frame_count: int
    gps: Gps | None
    direction: Direction
    model_version: str
    raw_text: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    # Non-zero only when every read of the pass missed characters: ``text`` is then part of the plate.
    hidden_characters: int = 0
