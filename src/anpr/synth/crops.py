"""Reader training samples: a rendered plate, seen through a camera, cropped by a loose box and resized.

Real crops come from hand-drawn or detected boxes, so the crop keeps some of the car around the plate (often a
frame with lettering of its own, :mod:`anpr.synth.mount`), cuts a little off at times, and the plate is slightly
rotated or seen at an angle. Some plates have a bar across them (a tow bar, a bicycle rack, a pole, as in
:mod:`anpr.synth.scene`); the characters it hides are labelled :data:`HIDDEN`, so a reader learns to say that a
character is there but cannot be read instead of reading the others as the whole plate.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from anpr.recognition.paddle_ctc import HIDDEN
from anpr.synth.effects import degrade
from anpr.synth.formats import FORMATS, PlateFormat, Rng
from anpr.synth.mount import bare, frame_plate, frame_share, warp_onto
from anpr.synth.plate import Plate, render_plate
from anpr.synth.scene import clutter_background

# A character counts as hidden when the bar covers at least this share of its width.
HIDDEN_SHARE = 0.35


@dataclass(frozen=True)
class ReaderSample:
    """An RGB crop of ``size`` (width, height), or as cut when no size was asked for, and its label (with
    :data:`HIDDEN` for each run of characters a bar hides)."""

    image: np.ndarray
    label: str
    format: str
    rows: int = 1


def plate_quad(rng: Rng, w: int, h: int, x0: float, y0: float, tilt: float) -> np.ndarray:
    """The four corners (tl, tr, br, bl) of a w x h plate placed at (x0, y0) with random rotation and perspective."""
    pts = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    jitter = rng.uniform(-tilt, tilt, (4, 2)).astype(np.float32) * np.array([w, h], np.float32) * 0.5
    pts = pts + jitter * np.array([0.25, 1.0], np.float32)
    angle = np.deg2rad(float(rng.normal(0, 4 * tilt / 0.15)))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], np.float32)
    centre = np.array([w / 2, h / 2], np.float32)
    pts = ((pts - centre) @ rot.T + centre).astype(np.float32)
    return np.asarray(pts + np.array([x0, y0], np.float32), np.float32)


def reader_sample(
    rng: Rng,
    size: tuple[int, int] | None = (128, 64),
    formats: tuple[PlateFormat, ...] = FORMATS,
    strength: float = 1.0,
    occlusion: float = 0.0,
    plate: Plate | None = None,
) -> ReaderSample:
    """One reader training sample: the crop resized to ``size`` (width, height; None keeps the cut) and its label.

    ``strength`` scales how often camera effects are applied (training starts gentle and ramps up); ``occlusion``
    is the share of plates a bar crosses (only plates whose characters' positions are known). ``plate``: this
    rendered plate instead of a new one (another view of the same plate; ``formats`` is then not drawn from).
    """
    if plate is None:
        fmt = formats[int(rng.integers(0, len(formats)))] if formats is not FORMATS else None
        plate = render_plate(rng, fmt)
    ph, pw = plate.image.shape[:2]
    # Shown at a random real-world size: plates seen 30 to 300 pixels wide.
    target_w = float(np.exp(rng.uniform(np.log(50), np.log(300))))
    s = target_w / pw
    margin = 0.6
    cw, ch = int(pw * s * (1 + 2 * margin)) + 4, int(ph * s * (1 + 2 * margin * 2)) + 4
    canvas = clutter_background(rng, cw, ch)
    quad = plate_quad(rng, int(pw * s), int(ph * s), pw * s * margin, ph * s * margin * 2, 0.15)
    framed = frame_plate(rng, plate.image) if rng.random() < frame_share(plate) else bare(plate.image)
    warp_onto(canvas, framed, quad)
    label = plate.label
    if plate.char_spans is not None and occlusion > 0 and rng.random() < occlusion:
        label = _bar_across(rng, canvas, plate.image.shape[:2], plate.label, plate.char_spans, quad)
    canvas = degrade(canvas, rng, strength, detail=ph * s * 0.6)
    x1, y1 = quad.min(axis=0)
    x2, y2 = quad.max(axis=0)
    bw, bh = x2 - x1, y2 - y1
    lo, hi = -0.04, 0.12
    x1 -= bw * rng.uniform(lo, hi)
    x2 += bw * rng.uniform(lo, hi)
    y1 -= bh * rng.uniform(lo, hi * 1.5)
    y2 += bh * rng.uniform(lo, hi * 1.5)
    xi1, yi1 = max(0, int(x1)), max(0, int(y1))
    xi2, yi2 = min(cw, int(np.ceil(x2))), min(ch, int(np.ceil(y2)))
    crop = canvas[yi1:yi2, xi1:xi2]
    out = cv2.resize(crop, size, interpolation=cv2.INTER_LINEAR) if size is not None else np.ascontiguousarray(crop)
    return ReaderSample(out, label, plate.format, rows=plate.display.count(" / ") + 1)


def _bar_across(
    rng: Rng,
    canvas: np.ndarray,
    plate_size: tuple[int, ...],
    label: str,
    spans: tuple[tuple[int, int], ...],
    quad: np.ndarray,
) -> str:
    """Draw a bar across the plate (``plate_size``: its height and width) placed on ``quad``, about a sixth of its
    width as in the scenes and reaching beyond its top and bottom; return ``label`` with each run of characters it
    hides (their x ``spans`` on the plate) as one :data:`HIDDEN`."""
    ph, pw = plate_size
    width = pw / 6 * float(rng.uniform(0.6, 1.4))
    left = float(rng.uniform(-0.1, 0.95)) * pw
    right = left + width
    corners = np.array([[left, -0.6 * ph], [right, -0.6 * ph], [right, 1.6 * ph], [left, 1.6 * ph]], np.float32)
    plate_rect = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32)
    m = cv2.getPerspectiveTransform(plate_rect, quad.astype(np.float32))
    bar = cv2.perspectiveTransform(corners.reshape(-1, 1, 2), m).reshape(-1, 2)
    colour = [float(v) for v in rng.uniform(0, 255, 3)]
    cv2.fillConvexPoly(canvas, np.round(bar).astype(np.int32), colour, cv2.LINE_AA)
    out: list[str] = []
    for ch, (x1, x2) in zip(label, spans, strict=True):
        covered = max(0.0, min(x2, right) - max(x1, left)) / max(x2 - x1, 1)
        if covered < HIDDEN_SHARE:
            out.append(ch)
        elif not out or out[-1] != HIDDEN:
            out.append(HIDDEN)
    return "".join(out)
