"""Render one plate: background, border, bands, caption, emblem and characters, as an RGB uint8 image.

The plate is drawn flat (no perspective, no camera effects); :mod:`anpr.synth.crops` and :mod:`anpr.synth.scene`
add those. Characters come from an installed font (Pillow) or the project's stroke font (:mod:`anpr.synth.glyphs`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from anpr.synth.fonts import available_fonts
from anpr.synth.formats import FORMATS, PlateFormat, Rng, Scheme, pick_format
from anpr.synth.glyphs import GlyphStyle, advance, draw_glyph


@dataclass(frozen=True)
class Plate:
    """A rendered plate: RGB image, its label (reading order, no separators) and its format.

    ``char_spans``: per character of the label, its left and right edge in the image (pixels), or None where the
    characters could not be told apart (glyphs touching or broken).
    """

    image: np.ndarray
    label: str
    format: str
    display: str
    char_spans: tuple[tuple[int, int], ...] | None = None


@functools.cache
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size)


def _jitter(rng: Rng, colour: tuple[int, int, int], amount: int = 14) -> tuple[int, int, int]:
    c = np.clip(np.array(colour) + rng.integers(-amount, amount + 1, 3), 0, 255)
    return (int(c[0]), int(c[1]), int(c[2]))


def _background(rng: Rng, h: int, w: int, scheme: Scheme, fmt: PlateFormat) -> np.ndarray:
    base = np.array(_jitter(rng, scheme.background), np.float32)
    img = np.empty((h, w, 3), np.float32)
    img[:] = base
    # Gentle gradient plus low-frequency mottling, as on embossed, weathered or pictorial plates.
    grad = np.linspace(-1, 1, h, dtype=np.float32)[:, None, None] * float(rng.uniform(-12, 12))
    img += grad
    if fmt.region in ("US", "ZA") and rng.random() < 0.5:
        for _ in range(int(rng.integers(1, 4))):
            colour = rng.uniform(0, 255, 3)
            centre = (int(rng.integers(0, w)), int(rng.integers(h // 2, h * 2)))
            axes = (int(rng.integers(w // 6, w)), int(rng.integers(h // 4, h)))
            layer = img.copy()
            cv2.ellipse(layer, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour.tolist(), -1)
            alpha = float(rng.uniform(0.08, 0.3))
            img = img * (1 - alpha) + layer * alpha
    noise = cv2.resize(rng.normal(0, 6, (max(h // 8, 2), max(w // 8, 2))).astype(np.float32), (w, h))
    img += noise[:, :, None]
    return img


def text_mask(rng: Rng, text: str, w: int, h: int, font: Path) -> np.ndarray:
    """``text`` in ``font`` as a 0-255 mask of exactly ``h`` x ``w`` (full height, width squeezed or centred)."""
    size = 96
    pil_font = _font(font, size)
    left, top, right, bottom = pil_font.getbbox(text)
    canvas = Image.new("L", (int(right - left) + 8, int(bottom - top) + 8), 0)
    ImageDraw.Draw(canvas).text((4 - left, 4 - top), text, font=pil_font, fill=255)
    arr = np.asarray(canvas)
    ys, xs = np.nonzero(arr > 0)
    if len(xs) == 0:
        return np.zeros((h, w), np.uint8)
    arr = arr[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return _fit(rng, arr, w, h)


def _fit(rng: Rng, arr: np.ndarray, w: int, h: int) -> np.ndarray:
    """Scale the text mask into a w x h box: full height, width squeezed or centred as plates do."""
    th, tw = arr.shape
    scale_h = h / th
    new_w = round(tw * scale_h * float(rng.uniform(0.85, 1.15)))
    new_w = max(1, min(new_w, w))
    out = np.zeros((h, w), np.uint8)
    resized = cv2.resize(arr, (new_w, h), interpolation=cv2.INTER_AREA)
    x0 = (w - new_w) // 2
    out[:, x0 : x0 + new_w] = resized
    return out


def _text_mask_stroke(rng: Rng, text: str, w: int, h: int, style: GlyphStyle) -> np.ndarray:
    scale = 4  # draw large, then shrink: smoother anti-aliasing
    cell_h = h * scale
    cell_w = cell_h * float(rng.uniform(0.36, 0.58))
    gap = cell_w * float(rng.uniform(0.06, 0.3))
    widths = [cell_w * (0.6 if c == " " else 0.55 if c in "-\u00b7" else advance(c)) for c in text]
    total = sum(widths) + gap * (len(text) - 1)
    canvas = np.zeros((cell_h, int(total) + 2), np.uint8)
    x = 0.0
    thick = max(1, round(style.stroke * cell_h))
    for ch, cw in zip(text, widths, strict=True):
        if ch == "-":
            y = cell_h // 2
            cv2.line(canvas, (int(x + cw * 0.1), y), (int(x + cw * 0.9), y), 255, thick)
        elif ch == "\u00b7":
            cv2.circle(canvas, (int(x + cw / 2), cell_h // 2), max(1, thick * 2 // 3), 255, -1, cv2.LINE_AA)
        elif ch != " ":
            draw_glyph(canvas, ch, x, 0.0, cw, float(cell_h), style)
        x += cw + gap
    return _fit(rng, canvas, w, h)


def _row_mask(rng: Rng, text: str, w: int, h: int, style: GlyphStyle, font: Path | None) -> np.ndarray:
    if font is None:
        return _text_mask_stroke(rng, text, w, h, style)
    return text_mask(rng, text, w, h, font)


def _char_spans(layer: np.ndarray, rows: list[tuple[int, int, str]]) -> tuple[tuple[int, int], ...] | None:
    """The x extent of every character of ``rows`` (top, height, text) in the character ``layer``, in reading
    order; None when a row's full-height ink blobs are not exactly its characters (touching or broken glyphs)."""
    spans: list[tuple[int, int]] = []
    for top, height, text in rows:
        count, _, stats, _ = cv2.connectedComponentsWithStats((layer[top : top + height] > 96).astype(np.uint8))
        # Separators (dashes, dots) are short; every plate character spans most of the row's height.
        blobs = sorted((int(x), int(x + bw)) for x, _, bw, bh, _ in stats[1:count] if bh >= 0.45 * height)
        if len(blobs) != sum(c.isalnum() for c in text):
            return None
        spans.extend(blobs)
    return tuple(spans)


def _draw_caption(
    rng: Rng, img: np.ndarray, text: str, box: tuple[int, int, int, int], colour: tuple[int, ...]
) -> None:
    fonts = available_fonts()
    x, y, w, h = box
    if h < 3 or w < 6:
        return
    if fonts:
        mask = text_mask(rng, text, w, h, fonts[int(rng.integers(0, len(fonts)))])
    else:
        mask = _text_mask_stroke(rng, "".join(c for c in text if c.isalnum() or c in " -"), w, h, GlyphStyle())
    _blend(img[y : y + h, x : x + w], mask, colour)


def _blend(region: np.ndarray, mask: np.ndarray, colour: tuple[int, ...]) -> None:
    a = (mask.astype(np.float32) / 255.0)[:, :, None]
    region[:] = region * (1 - a) + np.array(colour, np.float32) * a


def _emblem(rng: Rng, img: np.ndarray, x: int, y: int, size: int) -> None:
    colour = rng.uniform(0, 255, 3).tolist()
    kind = int(rng.integers(0, 5))
    c = (x + size // 2, y + size // 2)
    if kind == 3:  # a star (Texas, Ohio, ...)
        ang = np.pi * np.arange(10) / 5 - np.pi / 2
        radius = np.where(np.arange(10) % 2 == 0, size / 2, size / 5)
        pts = np.stack([c[0] + radius * np.cos(ang), c[1] + radius * np.sin(ang)], axis=1).astype(np.int32)
        cv2.fillPoly(img, [pts], colour, cv2.LINE_AA)
    elif kind == 4:  # a state outline or keystone: an irregular polygon
        ang = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(5, 9))))
        radius = rng.uniform(0.3, 0.5, len(ang)) * size
        pts = np.stack([c[0] + radius * np.cos(ang), c[1] + radius * np.sin(ang)], axis=1).astype(np.int32)
        cv2.fillPoly(img, [pts], colour, cv2.LINE_AA)
    elif kind == 0:
        cv2.circle(img, c, size // 2, colour, -1, cv2.LINE_AA)
        cv2.ellipse(img, (c[0], c[1] - size // 2), (size // 6, size // 8), 0, 0, 360, (40, 120, 40), -1)
    elif kind == 1:
        pts = np.array([[c[0], y], [x + size, y + size], [x, y + size]], np.int32)
        cv2.fillPoly(img, [pts], colour, cv2.LINE_AA)
    else:
        cv2.rectangle(img, (x, y + size // 4), (x + size, y + size), colour, -1)
        cv2.circle(img, (c[0], y + size // 4), size // 4, colour, -1)


def _stickers(rng: Rng, img: np.ndarray) -> None:
    """Registration stickers in the corners (month, year), as on most US plates."""
    h, w = img.shape[:2]
    sw, sh = int(w * float(rng.uniform(0.07, 0.12))), int(h * float(rng.uniform(0.14, 0.22)))
    corners = [
        (int(w * 0.02), int(h * 0.05)),
        (w - sw - int(w * 0.02), int(h * 0.05)),
        (int(w * 0.02), h - sh - int(h * 0.05)),
        (w - sw - int(w * 0.02), h - sh - int(h * 0.05)),
    ]
    for k in rng.permutation(4)[: int(rng.integers(1, 3))]:
        x, y = corners[int(k)]
        colour = rng.uniform(0, 255, 3).tolist()
        cv2.rectangle(img, (x, y), (x + sw, y + sh), colour, -1)
        text = ("JAN", "FEB", "JUN", "SEP", "DEC", "12", "25", "08")[int(rng.integers(0, 8))]
        _draw_caption(
            rng,
            img,
            text,
            (x + 1, y + sh // 5, max(1, sw - 2), max(1, sh * 3 // 5)),
            (250, 250, 250) if sum(colour) < 380 else (10, 10, 10),
        )


def render_plate(rng: Rng, fmt: PlateFormat | None = None, height: int | None = None) -> Plate:
    """Render a random plate of ``fmt`` (drawn with its weight when None), ``height`` pixels high."""
    fmt = fmt or pick_format(rng, FORMATS)
    groups = fmt.generate(rng)
    label = fmt.label(groups)
    rows = " ".join(groups).split(" | ")
    display = " / ".join(rows)
    if fmt.region == "BR" and rng.random() < 0.6:
        rows = [r.replace("-", "\u00b7") for r in rows]  # the old Brazilian plates separate with a middle dot
    h = height or int(rng.integers(56, 120))
    w = round(h * fmt.aspect * float(rng.uniform(0.95, 1.05)))
    scheme = fmt.schemes[int(rng.integers(0, len(fmt.schemes)))]
    img = _background(rng, h, w, scheme, fmt)
    ink = _jitter(rng, scheme.ink, 10)

    left = int(w * 0.04)
    right = w - int(w * 0.04)
    top = int(h * 0.1)
    bottom = h - int(h * 0.1)
    if fmt.band == "eu":
        band_w = int(w * 0.085)
        img[:, :band_w] = np.array(_jitter(rng, scheme.band or (0, 51, 153), 8), np.float32)
        for k in range(12):
            ang = 2 * np.pi * k / 12
            cx = band_w / 2 + np.cos(ang) * band_w * 0.28
            cy = h * 0.3 + np.sin(ang) * band_w * 0.28
            cv2.circle(img, (int(cx), int(cy)), max(1, h // 40), (240, 210, 0), -1)
        _draw_caption(
            rng,
            img,
            "D" if rng.random() < 0.5 else "F",
            (band_w // 4, int(h * 0.6), band_w // 2, int(h * 0.28)),
            (240, 240, 240),
        )
        left = band_w + int(w * 0.03)
    caption = fmt.caption[int(rng.integers(0, len(fmt.caption)))] if fmt.caption else ""
    if fmt.band == "top" and caption:
        us = fmt.region == "US"
        cap_h = int(h * float(rng.uniform(0.14, 0.26) if us else rng.uniform(0.12, 0.18)))
        cap_w = int(w * float(rng.uniform(0.3, 0.75) if us else rng.uniform(0.3, 0.6)))
        if rng.random() < 0.4 and scheme.band is not None:
            img[: cap_h + int(h * 0.06)] = img[: cap_h + int(h * 0.06)] * 0.3 + np.array(scheme.band) * 0.7
            cap_colour: tuple[int, ...] = (240, 240, 240)
        else:
            cap_colour = scheme.band or ink
            if us and rng.random() < 0.5:
                cap_colour = _jitter(
                    rng, ((180, 20, 30), (20, 50, 150), (20, 110, 50), (200, 120, 0))[int(rng.integers(0, 4))]
                )
        _draw_caption(rng, img, caption, ((w - cap_w) // 2, int(h * 0.04), cap_w, cap_h), cap_colour)
        top = int(h * 0.04) + cap_h + int(h * 0.05)
    if fmt.region == "US" and rng.random() < 0.6:
        _stickers(rng, img)
    if fmt.region == "US" and rng.random() < 0.5:
        slogan_h = int(h * 0.1)
        _draw_caption(
            rng,
            img,
            "DRIVE SAFELY" if rng.random() < 0.5 else "SUNSHINE STATE",
            (w // 4, h - slogan_h - int(h * 0.04), w // 2, slogan_h),
            scheme.band or ink,
        )
        bottom = h - slogan_h - int(h * 0.07)

    fonts = available_fonts()
    use_stroke = not fonts or rng.random() < (0.85 if fmt.glyph_style == "br" else 0.45)
    style = GlyphStyle.random(rng, fmt.glyph_style)
    font = fonts[int(rng.integers(0, len(fonts)))] if fonts else None
    layer = np.zeros((h, w), np.uint8)  # the characters alone, for their positions
    placed: list[tuple[int, int, str]] = []
    n_rows = len(rows)
    row_gap = int((bottom - top) * 0.08) if n_rows > 1 else 0
    row_h = ((bottom - top) - row_gap * (n_rows - 1)) // n_rows
    for r, row in enumerate(rows):
        y = top + r * (row_h + row_gap)
        rw = right - left
        x = left
        if fmt.region == "US" and n_rows == 1 and " " in row and rng.random() < 0.35:
            # A state emblem between the groups, drawn in the character row (a known reader confusion).
            a, b = row.split(" ", 1)
            size = int(row_h * 0.8)
            half = (rw - size) // 2 - int(w * 0.02)
            for part, px in ((a, x), (b, x + half + size + int(w * 0.04))):
                m = _row_mask(rng, part, half, row_h, style, None if use_stroke else font)
                _blend(img[y : y + row_h, px : px + half], m, ink)
                layer[y : y + row_h, px : px + half] = m
            _emblem(rng, img, x + half + int(w * 0.02), y + (row_h - size) // 2, size)
            placed.append((y, row_h, row))
            continue
        mask = _row_mask(rng, row, rw, row_h, style, None if use_stroke else font)
        _blend(img[y : y + row_h, x : x + rw], mask, ink)
        layer[y : y + row_h, x : x + rw] = mask
        placed.append((y, row_h, row))

    if scheme.border is not None and rng.random() < 0.85:
        t = max(1, h // 30)
        cv2.rectangle(img, (t, t), (w - 1 - t, h - 1 - t), _jitter(rng, scheme.border), t, cv2.LINE_AA)
    if rng.random() < 0.5:
        for sx in (w // 4, 3 * w // 4):
            cv2.circle(img, (sx, max(2, h // 14)), max(1, h // 28), (150, 150, 150), -1, cv2.LINE_AA)
    out = np.clip(img, 0, 255).astype(np.uint8)
    return Plate(out, label, fmt.name, display, _char_spans(layer, placed))
