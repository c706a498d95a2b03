"""Where a labelled plate was lost: ``anpr eval --losses``.

Accuracy says how many plates were read right; planning the next model needs to know where the others went. Each
labelled plate is put in one stage: read right or wrong (a reading was reported for it), or, when nothing was
reported, where a second pass of the same pipeline with every floor off (detector boxes down to
:data:`DIAGNOSTIC_DETECTION_FLOOR`, every box read, every reading reported) finds it: no box at all, a box the
detector or the refiner scored below its floor (never read), a reading scored below the reading floor (right or
wrong), or a reading above every floor that the one-reading-per-plate step or the plate limit left out.

``anpr eval`` calls a text right when it is the label folded (O = 0, I = 1), as ``folded_accuracy`` does, so
``read_right`` counts the same plates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the recognition extra is imported only by the commands that read
    from anpr.recognition import PlateResult, RecognitionOptions, RecognitionPipeline

# Boxes the detector scores this low are looked at only to say that it saw the plate at all.
DIAGNOSTIC_DETECTION_FLOOR = 0.05
# Enough plates per image that no box of the diagnostic pass is left out for the plate limit.
_DIAGNOSTIC_MAX_PLATES = 50
# Low enough that every non-empty reading is reported, above zero so that it is not "the default".
_EVERY_READING = 1e-9

STAGES: tuple[str, ...] = (
    "read_right",
    "read_wrong",
    "not_detected",
    "below_detector_floor",
    "below_refiner_floor",
    "right_below_reading_floor",
    "wrong_below_reading_floor",
    "left_out",
)
# Plate widths in the image's pixels (``losses_by_width``): how much of a plate a reader gets to see. Round
# figures, fixed before any set was broken down by them.
WIDTHS: tuple[tuple[str, int], ...] = (
    ("under 60 px", 60),
    ("60-99 px", 100),
    ("100-199 px", 200),
    ("200 px and wider", 2**31),
)


def width_bucket(width: float) -> str:
    """The :data:`WIDTHS` bucket of a labelled plate ``width`` pixels wide."""
    return next(name for name, below in WIDTHS if width < below)


@dataclass(frozen=True, slots=True)
class Floors:
    """The scores a plate must reach at each stage to be reported."""

    detection: float
    refined: float
    reading: float


def floors(pipeline: RecognitionPipeline, options: RecognitionOptions) -> Floors:
    """The floors ``pipeline`` applies to a request with ``options``."""
    return Floors(
        pipeline.detection_floor_for(options), pipeline.refined_floor(options), pipeline.reading_floor(options)
    )


def unfiltered(options: RecognitionOptions) -> RecognitionOptions:
    """``options`` with every floor off, for the diagnostic pass."""
    from anpr.recognition import RecognitionOptions

    return RecognitionOptions(
        max_plates=_DIAGNOSTIC_MAX_PLATES,
        min_detection_confidence=DIAGNOSTIC_DETECTION_FLOOR,
        min_reading_confidence=_EVERY_READING,
        max_alternatives=0,
        format_hints=options.format_hints,
    )


def stage(
    reported: PlateResult | None, candidate: PlateResult | None, right: Callable[[str], bool], limits: Floors
) -> str:
    """The :data:`STAGES` entry of a labelled plate: ``reported`` is the reading returned for it (None when none
    was), ``candidate`` the diagnostic pass's reading of it (None when no box overlapped it), ``right`` says whether
    a text is the label's."""
    if reported is not None:
        return "read_right" if right(reported.reading.text) else "read_wrong"
    if candidate is None:
        return "not_detected"
    if candidate.detection_confidence < limits.detection:
        return "below_detector_floor"
    if candidate.refined_confidence is not None and candidate.refined_confidence < limits.refined:
        return "below_refiner_floor"
    if candidate.reading.confidence < limits.reading:
        return "right_below_reading_floor" if right(candidate.reading.text) else "wrong_below_reading_floor"
    return "left_out"
