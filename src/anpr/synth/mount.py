"""How a plate sits on a car: the frame around it and the recess it is mounted in.

Real plates are seldom a bright rectangle alone on flat paint. Most US plates (and many others) sit in a dealer or
novelty frame whose bands carry text of their own ("I'M A NEIL DIAMOND FAN", a dealer's name), and in a recess of
the bumper or boot lid that is darker or lighter than the paint around it. Detectors trained without either boxed
the whole recess or the frame on real photos (openalpr-us, looked at by eye: median IoU 0.64 with the labelled
plate), and readers read the frame's text as characters. The plate's own box stays the label: frame and recess
are context that a model must learn to leave out.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from anpr.synth.fonts import available_fonts
from anpr.synth.formats import LETTERS, Rng, pick
from anpr.synth.plate import Plate, text_mask

# Words of dealer and novelty frames; mixed with random letters so no fixed phrase is learnt.
FRAME_WORDS = (
    "DEALER",
    "MOTORS",
    "AUTO",
    "TOYOTA OF",
    "HONDA",
    "FORD",
    "CHEVROLET",
    "ALUMNI",
    "UNIVERSITY",
    "I LOVE MY",
    "PROUD",
    "GRANDPARENT",
    "RATHER BE FISHING",
    "CARS.COM",
    "VISIT",
    "DRIVE",
    "WWW",
    "FINANCE",
)


@dataclass(frozen=True)
class Framed:
    """A plate image inside its frame: the RGB image and where the plate's own corners lie in it (tl, tr, br, bl)."""

    image: np.ndarray
    plate_corners: np.ndarray


def frame_share(plate: Plate) -> float:
    """How often a plate of this kind sits in a frame: most US plates, some others."""
    return 0.6 if plate.format.startswith("us") else 0.25


def bare(plate: np.ndarray) -> Framed:
    """A plate with no frame."""
    h, w = plate.shape[:2]
    return Framed(plate, np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32))


def _frame_text(rng: Rng) -> str:
    if rng.random() < 0.6:
        return " ".join(FRAME_WORDS[int(rng.integers(0, len(FRAME_WORDS)))] for _ in range(int(rng.integers(1, 3))))
    return pick(rng, LETTERS + "0123456789  ", int(rng.integers(4, 16))).strip() or "AUTO"


def _band_text(rng: Rng, img: np.ndarray, box: tuple[int, int, int, int], colour: tuple[float, ...]) -> None:
    x, y, w, h = box
    fonts = available_fonts()
    if w < 8 or h < 4 or not fonts:
        return
    text = _frame_text(rng)
    tw = min(w, int(h * len(text) * float(rng.uniform(0.45, 0.75))))
    mask = text_mask(rng, text, max(2, tw), h, fonts[int(rng.integers(0, len(fonts)))])
    x0 = x + (w - mask.shape[1]) // 2
    a = (mask.astype(np.float32) / 255.0)[:, :, None]
    region = img[y : y + h, x0 : x0 + mask.shape[1]]
    region[:] = region * (1 - a) + np.array(colour, np.float32) * a


def frame_plate(rng: Rng, plate: np.ndarray) -> Framed:
    """``plate`` (RGB) inside a frame: black plastic, chrome or a colour, its bands sometimes lettered, its inner edge
    covering the plate's rim a little (so captions near the edge are cut, as on real framed plates)."""
    h, w = plate.shape[:2]
    top = int(h * float(rng.uniform(0.04, 0.22)))
    bottom = int(h * float(rng.uniform(0.06, 0.28)))
    side = int(h * float(rng.uniform(0.03, 0.1)))
    cover = int(h * float(rng.uniform(0.0, 0.06)))
    fh, fw = h + top + bottom, w + 2 * side
    kind = int(rng.integers(0, 3))
    if kind == 0:  # black or dark plastic
        colour = np.array([float(rng.uniform(5, 45))] * 3, np.float32)
        body = np.broadcast_to(colour, (fh, fw, 3)).copy()
    elif kind == 1:  # chrome: a vertical ramp
        t = np.linspace(0, 1, fh, dtype=np.float32)
        ramp = 200 - 120 * np.exp(-(((t - float(rng.uniform(0.3, 0.7))) / 0.2) ** 2))
        body = np.repeat(np.repeat(ramp[:, None, None], fw, axis=1), 3, axis=2).astype(np.float32)
    else:  # a colour
        body = np.broadcast_to(rng.uniform(0, 255, 3).astype(np.float32), (fh, fw, 3)).copy()
    out = body.astype(np.float32)
    out[top : top + h, side : side + w] = plate
    if cover:
        inner = (side + cover, top + cover, side + w - cover, top + h - cover)
        rim = np.ones((fh, fw), bool)
        rim[inner[1] : inner[3], inner[0] : inner[2]] = False
        out[rim] = body[rim]
    ink = (240.0, 240.0, 240.0) if float(body.mean()) < 110 else (15.0, 15.0, 15.0)
    if rng.random() < 0.7 and bottom > 4:
        _band_text(rng, out, (side + w // 8, top + h + bottom // 6, w * 3 // 4, max(3, bottom * 2 // 3)), ink)
    if rng.random() < 0.4 and top > 4:
        _band_text(rng, out, (side + w // 6, top // 6, w * 2 // 3, max(3, top * 2 // 3)), ink)
    corners = np.array([[side, top], [side + w, top], [side + w, top + h], [side, top + h]], np.float32)
    return Framed(np.clip(out, 0, 255).astype(np.uint8), corners)


def recess(rng: Rng, img: np.ndarray, plate_box: tuple[float, float, float, float], paint: list[float]) -> None:
    """The recess a plate of ``plate_box`` (x, y, w, h) is mounted in, drawn into ``img`` before the plate: a
    rectangle somewhat larger than the plate, darker or lighter than the ``paint``, shaded at its top edge."""
    x, y, w, h = plate_box
    gw, gh = w * float(rng.uniform(0.04, 0.3)), h * float(rng.uniform(0.08, 0.6))
    shift = float(rng.uniform(-0.5, 0.5))
    x1, x2 = int(x - gw * (1 + shift)), int(x + w + gw * (1 - shift))
    y1, y2 = int(y - gh * float(rng.uniform(0.6, 1.4))), int(y + h + gh * float(rng.uniform(0.6, 1.4)))
    fh, fw = img.shape[:2]
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(fw, x2), min(fh, y2)
    if x2 - x1 < 4 or y2 - y1 < 4:
        return
    tone = float(rng.uniform(0.15, 0.8)) if rng.random() < 0.75 else float(rng.uniform(1.1, 1.5))
    colour = np.clip(np.array(paint, np.float32) * tone, 0, 255)
    depth = np.linspace(0.55, 1.0, max(2, (y2 - y1) // 4), dtype=np.float32)  # the top lip casts a shadow
    shade = np.ones(y2 - y1, np.float32)
    shade[: len(depth)] = depth
    img[y1:y2, x1:x2] = np.clip(colour[None, None, :] * shade[:, None, None], 0, 255).astype(np.uint8)
    if rng.random() < 0.5:  # a lip or chrome strip along an edge
        edge = y1 if rng.random() < 0.5 else y2 - 1
        lip = [float(rng.uniform(0, 255))] * 3
        cv2.line(img, (x1, edge), (x2, edge), lip, max(1, int(h * 0.05)), cv2.LINE_AA)


def warp_onto(img: np.ndarray, framed: Framed, quad: np.ndarray) -> None:
    """Paste ``framed`` into ``img`` so that the plate's corners land on ``quad`` (tl, tr, br, bl, image pixels);
    the frame follows the same perspective around it."""
    fh, fw = img.shape[:2]
    m = cv2.getPerspectiveTransform(framed.plate_corners, quad.astype(np.float32))
    h, w = framed.image.shape[:2]
    outer = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32).reshape(-1, 1, 2)
    placed = cv2.perspectiveTransform(outer, m).reshape(-1, 2)
    x1, y1 = (max(0, int(np.floor(v))) for v in placed.min(axis=0))
    x2, y2 = (int(np.ceil(v)) + 1 for v in placed.max(axis=0))
    x2, y2 = min(x2, fw), min(y2, fh)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return
    shift = np.array([[1, 0, -x1], [0, 1, -y1], [0, 0, 1]], np.float64)
    local = shift @ m
    size = (x2 - x1, y2 - y1)
    warped = cv2.warpPerspective(framed.image, local, size, flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), local, size, flags=cv2.INTER_AREA)
    a = (mask.astype(np.float32) / 255.0)[:, :, None]
    region = img[y1:y2, x1:x2]
    region[:] = (region * (1 - a) + warped * a).astype(np.uint8)
