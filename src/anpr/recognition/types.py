"""Result types of the recognition pipeline.

Plain frozen dataclasses that map one for one onto the ``anpr.recognize.v1`` / ``anpr.common.v1`` messages
(``ImageResult``, ``PlateDetection``, ``PlateReading``, ``PlateFormat``, ``AlternativeReading``), so the service can
convert them without knowing how they were computed; and :class:`RawReading`, what every reader adapter returns
before post-processing. Nothing here depends on ONNX Runtime or OpenCV.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Box:
    """Axis-aligned box in pixels of the original image: top-left corner, width and height."""

    x: float
    y: float
    width: float
    height: float

    @property
    def x2(self) -> float:
        """Right edge."""
        return self.x + self.width

    @property
    def y2(self) -> float:
        """Bottom edge."""
        return self.y + self.height

    def as_xywh(self) -> list[int]:
        """Integer ``[x, y, w, h]`` as printed by ``anpr read --json``."""
        return [round(self.x), round(self.y), round(self.width), round(self.height)]

    @property
    def area(self) -> float:
        """Width times height."""
        return self.width * self.height

    def intersection(self, other: Box) -> float:
        """Area shared with ``other``."""
        ix = max(0.0, min(self.x2, other.x2) - max(self.x, other.x))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y, other.y))
        return ix * iy

    def iou(self, other: Box) -> float:
        """Intersection over union with ``other`` (0 when either box is empty)."""
        inter = self.intersection(other)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


class PlateLayout(Enum):
    """One or two rows of characters (``anpr.common.v1.PlateLayout``)."""

    UNSPECIFIED = 0
    SINGLE_ROW = 1
    TWO_ROWS = 2


@dataclass(frozen=True, slots=True)
class FormatMatch:
    """The plate format a reading matched (``anpr.common.v1.PlateFormat``)."""

    format_id: str
    country_code: str
    region_code: str
    confidence: float
    # The matched pattern constrains some position (a catch-all such as ``X{1,8}`` does not): the syntax, not
    # only the length, fits the reading.
    specific: bool = False
    # The format's prior weight in its catalogue (1 for a common series, 0.01 for personalised plates).
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Alternative:
    """Another candidate text for a plate, ranked below the best (``AlternativeReading``)."""

    text: str
    confidence: float
    format: FormatMatch | None = None


@dataclass(frozen=True, slots=True)
class PlateReading:
    """What a plate says (``anpr.common.v1.PlateReading``).

    ``text`` is after syntax-aware correction, ``raw_text`` before it; correction replaces characters one for one,
    so ``character_confidences`` lines up with both. ``text`` is empty when the plate could not be read.
    ``hidden_characters`` counts the runs of characters the reader saw but could not read (a bar across the
    plate): the text is then only part of the plate, and the reading's score says so.
    """

    text: str
    raw_text: str
    confidence: float
    character_confidences: tuple[float, ...]
    display_text: str = ""
    format: FormatMatch | None = None
    layout: PlateLayout = PlateLayout.UNSPECIFIED
    alternatives: tuple[Alternative, ...] = ()
    hidden_characters: int = 0


@dataclass(frozen=True, slots=True)
class Detection:
    """A plate box found by the detector, in pixels of the original image."""

    box: Box
    confidence: float
    class_id: int = 0
    # The refiner's score for the box after a second look (0: it found no plate there); None when not refined.
    refined: float | None = None


@dataclass(frozen=True, slots=True)
class PlateResult:
    """One plate in an image: where it is and what it says (``PlateDetection``)."""

    box: Box
    detection_confidence: float
    reading: PlateReading
    # The refiner's score (:attr:`Detection.refined`), a second opinion on whether the box holds a plate.
    refined_confidence: float | None = None


@dataclass(frozen=True, slots=True)
class StageTimes:
    """Seconds spent per stage on one image.

    Batched stages (detection, refining, reading) are shared among the images of a batch; each image is charged its
    share (the batch time divided by the images or boxes it contributed), so the sum over a batch equals the wall
    time.
    """

    decode: float = 0.0
    detect: float = 0.0
    read: float = 0.0
    refine: float = 0.0

    @property
    def total(self) -> float:
        """Decode + detect + refine + read."""
        return self.decode + self.detect + self.refine + self.read


@dataclass(frozen=True, slots=True)
class ImageResult:
    """Recognition result of one image (``anpr.recognize.v1.ImageResult``).

    Exactly one of ``error`` and a (possibly empty) ``plates`` list is meaningful: when ``error`` is set the image
    failed on its own and the rest of the batch is unaffected.
    """

    plates: tuple[PlateResult, ...] = ()
    width: int = 0
    height: int = 0
    times: StageTimes = field(default_factory=StageTimes)
    error: Exception | None = None


@dataclass(frozen=True, slots=True)
class RawReading:
    """The reader's output for one crop before any post-processing.

    ``probabilities`` holds one row per character of ``text`` (the slot's distribution over the alphabet);
    ``slot_probabilities`` holds every slot, pads included, for alternatives. ``other_layout`` is the reading of
    the same crop in the row layout the reader did not prefer (one line against two rows side by side), when it
    tried both: the post-processing may still prefer it on the plate syntax. ``hidden`` counts the runs of
    characters the reader saw but could not read (a bar across the plate); they are not in ``text``.
    """

    text: str
    character_confidences: tuple[float, ...]
    confidence: float
    probabilities: npt.NDArray[np.float32]
    slot_probabilities: npt.NDArray[np.float32]
    other_layout: RawReading | None = None
    hidden: int = 0
