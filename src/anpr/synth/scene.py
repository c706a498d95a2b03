"""Detection scenes: cluttered street-like frames with 0 to 4 plates, their boxes, and hard negatives.

Plates are 20 to 400 px wide when scaled to a 1920-px-wide frame, warped in perspective, sometimes partly occluded.
Negatives look like plates to a careless detector: signs, badges, bumper stickers, random text, grilles, the
vehicle details and facades of :mod:`anpr.synth.vehicle` (emblems, model badges, lamps, reflections), the date and
time a dash-cam burns into its frames; and plates sit in frames and recesses (:mod:`anpr.synth.mount`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from anpr.synth import mount, vehicle
from anpr.synth.effects import degrade
from anpr.synth.formats import LETTERS, Rng, pick
from anpr.synth.glyphs import GlyphStyle, draw_glyph
from anpr.synth.mount import bare, frame_share


@dataclass(frozen=True)
class Scene:
    """An RGB frame, plate boxes ``[K, 4]`` as x1, y1, x2, y2 in pixels, their labels, and which plates a bar
    crosses (``occluded``: a tow bar or rack drawn over part of the characters, so no reader can read all of them)."""

    image: np.ndarray
    boxes: np.ndarray
    labels: tuple[str, ...]
    occluded: tuple[bool, ...] = ()


NEGATIVE_KINDS = 9
PLAIN_NEGATIVE_KINDS = 5  # sign, badge, grille, loose text, lamp: the negatives before vehicle details


def _colour(rng: Rng) -> list[float]:
    return [float(v) for v in rng.uniform(0, 255, 3)]


def clutter_background(rng: Rng, w: int, h: int) -> np.ndarray:
    """A textured background: gradient, low-frequency blotches, rectangles and lines."""
    cells = int(rng.choice([4, 8, 16, 32]))  # coarse blotches (walls, tarmac, sky) to fine clutter (foliage)
    small = rng.uniform(0, 255, (max(2, h * cells // w), max(2, cells), 3)).astype(np.float32)
    small = small * 0.5 + small.mean(axis=2, keepdims=True) * 0.5
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    if rng.random() < 0.5:  # mostly grey streets, walls and car bodies
        img = img * 0.3 + img.mean(axis=2, keepdims=True) * 0.7
    img = img * float(rng.uniform(0.3, 1.0)) + np.array(_colour(rng), np.float32) * float(rng.uniform(0, 0.7))
    for _ in range(int(rng.integers(0, 6))):
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        if rng.random() < 0.5:
            cv2.rectangle(img, p1, p2, _colour(rng), -1)
        else:
            cv2.line(img, p1, p2, _colour(rng), int(rng.integers(1, max(2, h // 20))))
    img += rng.standard_normal((h, w, 1), dtype=np.float32) * np.float32(rng.uniform(1, 8))  # fine texture
    return np.asarray(np.clip(img, 0, 255), np.uint8)


def _random_text(rng: Rng, img: np.ndarray, x: int, y: int, w: int, h: int, colour: list[float]) -> None:
    """Stroke-font text of 2 to 10 characters filling (x, y, w, h): text that is not a plate."""
    text = pick(rng, LETTERS + "0123456789  ", int(rng.integers(2, 11)))
    if w < 4 or h < 4:
        return
    mask = np.zeros((h, w), np.uint8)
    cw = w / max(len(text), 1)
    style = GlyphStyle.random(rng)
    for i, ch in enumerate(text):
        draw_glyph(mask, ch, i * cw + cw * 0.1, 0, cw * 0.8, h, style)
    region = img[y : y + h, x : x + w]
    a = (mask.astype(np.float32) / 255.0)[:, :, None]
    region[:] = (region * (1 - a) + np.array(colour) * a).astype(np.uint8)


def _negative(rng: Rng, img: np.ndarray, kinds: int) -> None:
    """Draw one hard negative: sign, badge, sticker, text, grille, lamp, maker's emblem, model badge or reflection."""
    fh, fw = img.shape[:2]
    w = int(fw * float(np.exp(rng.uniform(np.log(0.015), np.log(0.25)))))
    h = max(4, int(w * float(rng.uniform(0.15, 1.0))))
    x, y = int(rng.integers(0, max(1, fw - w))), int(rng.integers(0, max(1, fh - h)))
    kind = int(rng.integers(0, kinds))
    if kind == 0:  # sign or sticker with text
        cv2.rectangle(img, (x, y), (x + w, y + h), _colour(rng), -1)
        _random_text(rng, img, x + w // 10, y + h // 4, w * 8 // 10, h // 2, _colour(rng))
    elif kind == 1:  # badge
        cv2.circle(img, (x + w // 2, y + h // 2), max(2, min(w, h) // 2), _colour(rng), -1, cv2.LINE_AA)
        cv2.circle(img, (x + w // 2, y + h // 2), max(1, min(w, h) // 3), _colour(rng), 2, cv2.LINE_AA)
    elif kind == 2:  # grille
        step = max(2, h // int(rng.integers(3, 9)))
        for yy in range(y, y + h, step):
            cv2.line(img, (x, yy), (x + w, yy), _colour(rng) if rng.random() < 0.2 else (30, 30, 30), max(1, step // 2))
    elif kind == 3:  # loose text
        _random_text(rng, img, x, y, w, min(h, max(4, w // 5)), _colour(rng))
    elif kind == 4:  # light bar / lamp
        cv2.ellipse(img, (x + w // 2, y + h // 2), (w // 2, max(1, h // 4)), 0, 0, 360, _colour(rng), -1)
    elif kind == 5:
        vehicle.emblem(rng, img, x + w // 2, y + h // 2, min(w, fw // 8))
    elif kind == 6:
        vehicle.badge(rng, img, x, y, max(5, min(h, w // 4)))
    elif kind == 7:
        vehicle.lamp(rng, img, (x, y, x + w, y + max(3, h // 2)))
    else:
        vehicle.highlights(rng, img, (x, y, x + w, y + h))


def _overlay(rng: Rng, img: np.ndarray) -> None:
    """The text a dash-cam or video recorder burns into its frames: date and time, often a camera name or speed,
    in white or yellow with a dark outline along the top or bottom edge (read as long digit strings on real
    frames)."""
    fh, fw = img.shape[:2]
    y, m, d = int(rng.integers(2010, 2031)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
    hh, mm, ss = int(rng.integers(0, 24)), int(rng.integers(0, 60)), int(rng.integers(0, 60))
    sep = "/-."[int(rng.integers(0, 3))]
    text = f"{y}{sep}{m:02d}{sep}{d:02d} {hh:02d}:{mm:02d}:{ss:02d}"
    if rng.random() < 0.4:
        text += " " + pick(rng, LETTERS, int(rng.integers(2, 5))) + pick(rng, "0123456789", int(rng.integers(1, 4)))
    h = max(6, int(fh * float(rng.uniform(0.015, 0.04))))
    w = min(fw - 4, int(h * len(text) * float(rng.uniform(0.5, 0.7))))
    x = int(rng.integers(2, max(3, fw - w - 2)))
    top = int(rng.integers(2, max(3, h))) if rng.random() < 0.5 else fh - h - int(rng.integers(2, max(3, h)))
    mask = np.zeros((h, w), np.uint8)
    cw = w / len(text)
    style = GlyphStyle.random(rng)
    for i, ch in enumerate(text):
        if ch != " ":
            draw_glyph(mask, ch if ch.isalnum() else "-", i * cw + cw * 0.1, 0, cw * 0.8, h, style)
    outline = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    colour = np.array((250, 250, 250) if rng.random() < 0.6 else (250, 230, 40), np.float32)
    region = img[top : top + h, x : x + w].astype(np.float32)
    dark = (outline.astype(np.float32) / 255.0)[:, :, None] * 0.8
    region = region * (1 - dark)
    a = (mask.astype(np.float32) / 255.0)[:, :, None]
    img[top : top + h, x : x + w] = (region * (1 - a) + colour * a).astype(np.uint8)


def _car(rng: Rng, img: np.ndarray, cx: int, cy: int, pw: int, details: bool) -> list[float]:
    """A car around the spot where a plate will go: body, glass, wheels, bumper and lamps; with ``details`` the body
    is shaded and the lamps have lenses, and the maker's emblem above the plate, a model badge beside it and
    reflections on the paint come sometimes. Without, it is the flat car of the first detectors' scenes. Returns the
    paint colour."""
    w = int(pw * float(rng.uniform(3.5, 6)))
    h = int(w * float(rng.uniform(0.4, 0.7)))
    x1, y1 = cx - w // 2, cy - int(h * float(rng.uniform(0.5, 0.8)))
    body = _colour(rng) if rng.random() < 0.5 else [float(rng.uniform(20, 235))] * 3
    if details:
        vehicle.shaded_body(rng, img, (x1, y1, x1 + w, y1 + h), body)
    else:
        cv2.rectangle(img, (x1, y1), (x1 + w, y1 + h), body, -1)
    glass = [float(rng.uniform(10, 80))] * 3
    cv2.rectangle(img, (x1 + w // 8, y1 - h // 2), (x1 + w - w // 8, y1), glass, -1)
    for wx in (x1 + w // 8, x1 + w - w // 8):
        cv2.circle(img, (wx, y1 + h), max(2, h // 4), (20, 20, 20), -1)
    cv2.rectangle(img, (x1, cy + pw // 8), (x1 + w, cy + pw // 3), [c * 0.5 for c in body], -1)
    for lx in (x1 + w // 10, x1 + w - w // 10 - w // 6):
        lamp = (lx, y1 + h // 3, lx + w // 6, y1 + h // 3 + h // 8)
        if details:
            vehicle.lamp(rng, img, lamp)
        else:
            cv2.rectangle(img, lamp[:2], lamp[2:], _colour(rng), -1)
    if not details:
        return body
    if rng.random() < 0.7:
        ew = int(pw * float(rng.uniform(0.2, 0.45)))
        vehicle.emblem(rng, img, cx, int(cy - pw * float(rng.uniform(0.14, 0.4)) - ew * 0.5), ew)
    if rng.random() < 0.6:
        bh = max(5, int(pw * float(rng.uniform(0.06, 0.16))))
        bx = int(cx + pw * float(rng.uniform(0.6, 1.2))) if rng.random() < 0.5 else x1 + w // 20
        vehicle.badge(rng, img, bx, int(cy - pw * float(rng.uniform(0.0, 0.4))), bh)
    if rng.random() < 0.5:
        vehicle.highlights(rng, img, (x1, y1 - h // 2, x1 + w, y1 + h))
    return body


def render_scene(
    rng: Rng,
    width: int = 1920,
    height: int = 1080,
    max_plates: int = 4,
    min_width_1080p: float = 20.0,
    max_width_1080p: float = 400.0,
    details: bool = True,
) -> Scene:
    """One frame of ``width`` x ``height`` with 0 to ``max_plates`` plates (sizes given for a 1920-px frame).

    ``details=False`` draws the plainer scenes the first detector stages were trained on (no facades, flat cars,
    the first five kinds of negative); a seed gives the same frames as before the details were added.
    """
    from anpr.synth.crops import plate_quad  # the crop module builds on this one's backgrounds
    from anpr.synth.plate import render_plate

    img = clutter_background(rng, width, height)
    for _ in range(int(rng.integers(0, 3)) if details else 0):
        vehicle.facade(rng, img)
    for _ in range(int(rng.integers(2, 10))):
        _negative(rng, img, NEGATIVE_KINDS if details else PLAIN_NEGATIVE_KINDS)
    scale = width / 1920.0
    for _ in range(int(rng.integers(0, 3)) if details else 0):  # cars whose plate is out of sight or missing
        pw = int(float(np.exp(rng.uniform(np.log(60), np.log(400)))) * scale)
        _car(rng, img, int(rng.integers(0, width)), int(rng.integers(0, height)), pw, details)
    n = int(rng.choice([0, 1, 1, 1, 2, 2, 3, 4][: max_plates + 4]))
    n = min(n, max_plates)
    boxes: list[list[float]] = []
    labels: list[str] = []
    occluded: list[bool] = []
    placed = []
    for _ in range(n):
        plate = render_plate(rng)
        ph, pw = plate.image.shape[:2]
        lo = min_width_1080p if rng.random() < 0.6 else max(min_width_1080p, min(100.0, max_width_1080p))
        target_w = float(np.exp(rng.uniform(np.log(lo), np.log(max_width_1080p)))) * scale
        s = target_w / pw
        tw, th = max(2, int(pw * s)), max(2, int(ph * s))
        if tw >= width - 4 or th >= height - 4:
            continue
        x0 = float(rng.uniform(2, width - tw - 2))
        y0 = float(rng.uniform(2, height - th - 2))
        if any(not (x0 + tw < b[0] or x0 > b[2] or y0 + th < b[1] or y0 > b[3]) for b in boxes):
            continue
        boxes.append([x0, y0, x0 + tw, y0 + th])
        placed.append((plate, x0, y0, tw, th))
        if rng.random() < 0.7:
            paint = _car(rng, img, int(x0 + tw / 2), int(y0 + th / 2), tw, details)
            if details and rng.random() < 0.6:
                mount.recess(rng, img, (x0, y0, tw, th), paint)
    boxes = []
    for plate, x0, y0, tw, th in placed:
        quad = plate_quad(rng, tw, th, x0, y0, 0.2)
        quad[:, 0] = np.clip(quad[:, 0], 0, width - 1)
        quad[:, 1] = np.clip(quad[:, 1], 0, height - 1)
        bx1, by1 = (int(v) for v in np.floor(quad.min(axis=0)))
        bx2, by2 = (int(v) for v in np.ceil(quad.max(axis=0)))
        bx2, by2 = min(bx2 + 1, width), min(by2 + 1, height)
        small = cv2.resize(plate.image, (max(tw * 2, 4), max(th * 2, 4)), interpolation=cv2.INTER_AREA)
        framed = mount.frame_plate(rng, small) if details and rng.random() < frame_share(plate) else bare(small)
        mount.warp_onto(img, framed, quad)
        hidden = rng.random() < 0.1  # partial occlusion (a tow bar, a bicycle rack, another car's edge)
        if hidden:
            ox = bx1 + int(rng.uniform(0, 0.7) * (bx2 - bx1))
            cv2.rectangle(img, (ox, by1 - 2), (ox + max(2, (bx2 - bx1) // 6), by2 + 2), _colour(rng), -1)
        occluded.append(hidden)
        boxes.append([float(bx1), float(by1), float(bx2), float(by2)])
        labels.append(plate.label)
    if details and rng.random() < 0.25:
        _overlay(rng, img)
    img = degrade(img, rng, 1.0, detail=min((b[3] - b[1] for b in boxes), default=40.0))
    arr = np.array(boxes, np.float32).reshape(-1, 4)
    return Scene(img, arr, tuple(labels), tuple(occluded))


def jpeg_scenes(count: int, seed: int, *, quality: int = 90) -> list[bytes]:
    """``count`` seeded synthetic scenes with one to three plates each, as JPEG files (the load the recognize
    benchmarks send)."""
    rng: Rng = np.random.default_rng(seed)
    frames: list[bytes] = []
    while len(frames) < count:
        scene = render_scene(rng, max_plates=3)
        if not 1 <= len(scene.labels) <= 3:
            continue
        ok, data = cv2.imencode(
            ".jpg", cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR), (cv2.IMWRITE_JPEG_QUALITY, quality)
        )
        if ok:
            frames.append(data.tobytes())
    return frames
