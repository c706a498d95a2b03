"""A second look at each box to read: the detector again, on the box's surroundings at a higher resolution.

On a 1280 x 720 video frame letterboxed to 512 px, a 70-px plate is about 28 px of detector input, three or four
cells of its stride-8 grid: its box often covered the bumper recess the plate sits in, or slid half a plate
sideways (openalpr-us, by eye: median IoU 0.64 with the labelled plate; a reading cannot be better than its crop).
The refiner is the same detector weights exported for a small input (256 px). It looks at the region around a box
(``context`` box widths and heights on each side), where the plate is several times larger, and its best box that
overlaps the first one replaces it; a box it finds nothing in is kept as it was. Its score is a second opinion on
whether there is a plate at all: a box it scores below the model set's floor is not read (openalpr-br and -us,
looked at 2026-12-06: a refiner score of 0.3 kept every labelled plate but one and a third of the other boxes).

Measured 2026-12-06 with detector 2026-12-06.1 and the reader of 2026-12-03 (the region 1 width and 1.5 heights
on each side, the box read exactly): synthetic held-out 1080p scenes 167 -> 170 of 176 legible plates, synthetic
close-ups 68 -> 75 of 81, openalpr-us 136 -> 146 of 222 (validation only), openalpr-br 108 -> 108 of 114; about
2.3 ms per box on one core.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from anpr.recognition.detector import Yolov9End2EndDetector
from anpr.recognition.imaging import DecodedImage, ImageArray
from anpr.recognition.types import Box, Detection

# A refined box must overlap the first one at least this much to be the same plate.
_SAME_PLATE_IOU = 0.2
# The refiner's own score floor: it only has to place a box the first detector already found.
MIN_SCORE = 0.05


def region(image: DecodedImage, box: Box, context: tuple[float, float]) -> Box:
    """The area around ``box`` the refiner looks at, within the image (full-resolution pixels)."""
    gx, gy = box.width * context[0], box.height * context[1]
    x1, y1 = max(0.0, box.x - gx), max(0.0, box.y - gy)
    x2, y2 = min(float(image.width), box.x2 + gx), min(float(image.height), box.y2 + gy)
    return Box(x1, y1, max(1.0, x2 - x1), max(1.0, y2 - y1))


def refine_boxes(
    refiner: Yolov9End2EndDetector,
    items: Sequence[tuple[DecodedImage, Detection]],
    context: tuple[float, float],
) -> list[Detection]:
    """Each (image, detection) with its box refined, in order, as one refiner batch. The confidence stays the first
    detector's; the refiner's score goes to ``refined`` (0 when it found no plate there: the box is kept as it was),
    a second opinion that the scorer weighs and its floor gates reading on."""
    if not items:
        return []
    areas = [region(image, detection.box, context) for image, detection in items]
    cuts: list[ImageArray] = [
        np.ascontiguousarray(image.crop(area)) for (image, _), area in zip(items, areas, strict=True)
    ]
    found = refiner.detect(cuts)
    out = []
    for (_, detection), area, cut, candidates in zip(items, areas, cuts, found, strict=True):
        sx, sy = area.width / cut.shape[1], area.height / cut.shape[0]
        mapped = [
            (Box(area.x + c.box.x * sx, area.y + c.box.y * sy, c.box.width * sx, c.box.height * sy), c.confidence)
            for c in candidates
        ]
        same = [(box, score) for box, score in mapped if box.iou(detection.box) >= _SAME_PLATE_IOU]
        if same:
            best, score = max(same, key=lambda pair: pair[1])
            out.append(Detection(best, detection.confidence, detection.class_id, refined=score))
        else:
            out.append(replace(detection, refined=0.0))
    return out
