"""Vehicle details that a plate detector must learn to ignore, and the building facades behind traffic.

The first detectors, trained on scenes with flat rectangles for cars, boxed mostly these on real street photos
(openalpr-br, looked at by eye; see ``docs/BENCHMARKS.md``): maker emblems (chrome ovals and rings with letters or
a shape inside), model badges (a word in chrome or dark letters on the paint, often italic), lamp clusters, and
bright specular streaks on dark paint and glass; then tower blocks against the sky. Each function draws one such
thing into an RGB uint8 image in place; none of them draws a plate-like filled rectangle under its letters, which
is what a plate has and they do not.
"""

from __future__ import annotations

import cv2
import numpy as np

from anpr.synth.fonts import badge_fonts
from anpr.synth.formats import LETTERS, Rng, pick
from anpr.synth.plate import text_mask

Box = tuple[int, int, int, int]  # x1, y1, x2, y2


def _grey(rng: Rng, lo: float, hi: float) -> list[float]:
    return [float(rng.uniform(lo, hi))] * 3


def _paste(img: np.ndarray, mask: np.ndarray, x: int, y: int, colour: np.ndarray) -> None:
    """Blend ``colour`` (a colour, or an image of the mask's size) through a 0-255 ``mask`` at (x, y), clipped."""
    h, w = mask.shape[:2]
    fh, fw = img.shape[:2]
    x1, y1, x2, y2 = max(x, 0), max(y, 0), min(x + w, fw), min(y + h, fh)
    if x2 <= x1 or y2 <= y1:
        return
    a = (mask[y1 - y : y2 - y, x1 - x : x2 - x].astype(np.float32) / 255.0)[:, :, None]
    paint = colour[y1 - y : y2 - y, x1 - x : x2 - x] if colour.ndim == 3 else colour
    region = img[y1:y2, x1:x2]
    region[:] = (region * (1 - a) + paint * a).astype(np.uint8)


def _soft(mask: np.ndarray, sigma: float) -> np.ndarray:
    """A 0-255 mask blurred by ``sigma`` px, still uint8 (glowing lamp segments, soft reflections)."""
    return np.asarray(cv2.GaussianBlur(mask, (0, 0), sigma), np.uint8)


def _chrome(h: int, w: int, rng: Rng) -> np.ndarray:
    """A vertical chrome ramp (bright top, dark band, bright again), ``[h, w, 3]`` float."""
    t = np.linspace(0, 1, max(h, 1), dtype=np.float32)
    mid = float(rng.uniform(0.35, 0.65))
    ramp = 215 - 150 * np.exp(-(((t - mid) / 0.18) ** 2)) + float(rng.uniform(-25, 30))
    tint = rng.uniform(-8, 8, 3).astype(np.float32)
    out = np.clip(ramp[:, None, None] + tint[None, None, :], 0, 255)
    return np.broadcast_to(out, (max(h, 1), max(w, 1), 3)).astype(np.float32)


def shaded_body(rng: Rng, img: np.ndarray, box: Box, colour: list[float]) -> None:
    """Car paint over ``box``: a vertical shading ramp and one soft horizontal highlight band."""
    x1, y1, x2, y2 = box
    fh, fw = img.shape[:2]
    x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, fw), min(y2, fh)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return
    h = y2 - y1
    t = np.linspace(-1, 1, h, dtype=np.float32)[:, None, None]
    band = float(rng.uniform(-0.6, 0.6))
    light = 1.0 + float(rng.uniform(0.1, 0.35)) * np.exp(-(((t - band) / 0.15) ** 2)) - 0.25 * t
    sheen = 25 * np.exp(-(((t - band) / 0.1) ** 2))
    paint = np.clip(np.array(colour, np.float32)[None, None, :] * light + sheen, 0, 255)
    img[y1:y2, x1:x2] = np.broadcast_to(paint, (h, x2 - x1, 3)).astype(np.uint8)


def emblem(rng: Rng, img: np.ndarray, cx: int, cy: int, w: int) -> None:
    """A maker's emblem about ``w`` px wide centred at (cx, cy): chrome oval, ring or shield with a mark inside."""
    if w < 6:
        return
    h = max(4, int(w * float(rng.uniform(0.45, 1.0))))
    x, y = cx - w // 2, cy - h // 2
    chrome = _chrome(h, w, rng)
    outer = np.zeros((h, w), np.uint8)
    kind = int(rng.integers(0, 3))
    if kind == 2:  # shield / chevron-like badge
        pts = np.array([[0, 0], [w - 1, 0], [w - 1, h * 2 // 3], [w // 2, h - 1], [0, h * 2 // 3]], np.int32)
        cv2.fillPoly(outer, [pts], 255, cv2.LINE_AA)
    else:
        cv2.ellipse(outer, (w // 2, h // 2), (w // 2 - 1, h // 2 - 1), 0, 0, 360, 255, -1, cv2.LINE_AA)
    _paste(img, outer, x, y, chrome)
    inner = cv2.erode(outer, np.ones((3, 3), np.uint8), iterations=max(1, min(w, h) // 12))
    if kind != 1:  # kind 1 is a bare ring: the paint shows through
        fill = [(20, 40, 120), (160, 20, 30), _grey(rng, 10, 60)][int(rng.integers(0, 3))]
        _paste(img, inner, x, y, np.array(fill, np.float32))
    mark = np.zeros((h, w), np.uint8)
    if rng.random() < 0.5 and badge_fonts():
        word = pick(rng, LETTERS, int(rng.integers(1, 5)))
        fonts = badge_fonts()
        m = text_mask(rng, word, max(2, w * 3 // 4), max(2, h // 2), fonts[int(rng.integers(0, len(fonts)))])
        mark[h // 4 : h // 4 + m.shape[0], w // 8 : w // 8 + m.shape[1]] = m
    else:  # a geometric mark: star, crossed lines, a V
        c = (w // 2, h // 2)
        r = min(w, h) // 2 - 2
        for k in range(int(rng.integers(2, 6))):
            ang = np.pi * 2 * k / max(1, int(rng.integers(2, 6))) + float(rng.uniform(0, np.pi))
            end = (int(c[0] + np.cos(ang) * r), int(c[1] + np.sin(ang) * r))
            cv2.line(mark, c, end, 255, max(1, r // 5), cv2.LINE_AA)
    _paste(img, mark, x, y, _chrome(h, w, rng))


def badge(rng: Rng, img: np.ndarray, x: int, y: int, h: int) -> None:
    """A model name ``h`` px high with its top-left at (x, y): chrome or dark letters straight on the paint."""
    fonts = badge_fonts()
    if h < 5 or not fonts:
        return
    n = int(rng.integers(3, 9))
    word = pick(rng, LETTERS, 1) + pick(rng, LETTERS.lower(), n - 1) if rng.random() < 0.5 else pick(rng, LETTERS, n)
    if rng.random() < 0.25:
        word += " " + pick(rng, LETTERS + "0123456789", int(rng.integers(1, 4)))
    w = int(h * len(word) * float(rng.uniform(0.5, 0.8)))
    mask = text_mask(rng, word, max(2, w), h, fonts[int(rng.integers(0, len(fonts)))])
    if rng.random() < 0.6:
        shadow = np.roll(mask, 1, axis=0)
        _paste(img, shadow, x + 1, y, np.array(_grey(rng, 0, 50), np.float32))
        _paste(img, mask, x, y, _chrome(h, mask.shape[1], rng))
    else:
        _paste(img, mask, x, y, np.array(_grey(rng, 0, 255), np.float32))


def lamp(rng: Rng, img: np.ndarray, box: Box) -> None:
    """A head or tail lamp cluster over ``box``: coloured lens with bright inner segments."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if w < 4 or h < 3:
        return
    mask = np.zeros((h, w), np.uint8)
    slant = int(w * float(rng.uniform(-0.3, 0.3)))
    pts = np.array([[max(0, slant), 0], [w - 1, 0], [w - 1 - max(0, -slant), h - 1], [0, h - 1]], np.int32)
    cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA)
    rear = rng.random() < 0.5
    lens = np.array((150, 20, 25) if rear else _grey(rng, 150, 230), np.float32)
    _paste(img, mask, x1, y1, lens)
    segments = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(1, 5))):
        if rear:
            sy = int(rng.integers(0, h))
            cv2.line(segments, (0, sy), (w - 1, sy), 255, max(1, h // 8))
        else:
            cv2.circle(segments, (int(rng.integers(0, w)), h // 2), max(1, h // 3), 255, max(1, h // 10), cv2.LINE_AA)
    glow = _soft(segments, max(0.6, h / 12)) & mask
    _paste(img, glow, x1, y1, np.array((255, 170, 120) if rear else (255, 255, 255), np.float32))


def highlights(rng: Rng, img: np.ndarray, box: Box) -> None:
    """Bright specular streaks and blobs inside ``box``, as sun and sky reflect on paint, chrome and glass."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if w < 8 or h < 8:
        return
    mask = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(1, 6))):
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        ang = float(rng.uniform(-0.5, 0.5))
        length = float(rng.uniform(0.1, 0.6)) * w
        p2 = (int(p1[0] + np.cos(ang) * length), int(p1[1] + np.sin(ang) * length))
        cv2.line(mask, p1, p2, 255, max(1, int(h * float(rng.uniform(0.01, 0.06)))), cv2.LINE_AA)
    _paste(img, _soft(mask, float(rng.uniform(0.5, 2.5))), x1, y1, np.array(_grey(rng, 200, 255), np.float32))


def facade(rng: Rng, img: np.ndarray) -> None:
    """A building: a tall block with a grid of windows, against whatever is behind it."""
    fh, fw = img.shape[:2]
    w = int(fw * float(rng.uniform(0.05, 0.3)))
    h = int(fh * float(rng.uniform(0.2, 0.8)))
    x, y = int(rng.integers(0, max(1, fw - w))), int(rng.integers(0, max(1, fh - h)))
    wall = _grey(rng, 120, 240) if rng.random() < 0.7 else [float(v) for v in rng.uniform(60, 230, 3)]
    shaded_body(rng, img, (x, y, x + w, y + h), wall)
    cols, rows = int(rng.integers(3, 12)), int(rng.integers(4, 30))
    cw, rh = w / cols, h / rows
    glass = _grey(rng, 20, 120)
    for r in range(rows):
        for c in range(cols):
            if rng.random() < 0.9:
                wx, wy = int(x + c * cw + cw * 0.2), int(y + r * rh + rh * 0.25)
                cv2.rectangle(img, (wx, wy), (int(wx + cw * 0.6), int(wy + rh * 0.5)), glass, -1)
