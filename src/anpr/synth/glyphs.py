"""A stroke font drawn by the project: plate-style glyphs that generic fonts lack.

Each glyph is a set of polylines on a 4 x 8 grid, drawn with thick strokes. Variants cover the shapes measured as
failures of generic fonts (see ``shared/notes/recognition-findings.md``): the open-top 4 of many US plates, the
1 of the old Brazilian plate font (a bare bar, without foot or flag, the same stroke as its I) and its square O/0,
narrow 8/6. All shapes are our own.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

Pts = tuple[tuple[float, float], ...]


def _oct(chamfer: float, x0: float = 0.0, y0: float = 0.0, x1: float = 4.0, y1: float = 8.0) -> Pts:
    c = chamfer
    return (
        (x0 + c, y0),
        (x1 - c, y0),
        (x1, y0 + c),
        (x1, y1 - c),
        (x1 - c, y1),
        (x0 + c, y1),
        (x0, y1 - c),
        (x0, y0 + c),
        (x0 + c, y0),
    )


def _rot(p: Pts) -> Pts:
    return tuple((4.0 - x, 8.0 - y) for x, y in p)


SIX: Pts = (
    (3.7, 0.5),
    (2.8, 0),
    (1, 0),
    (0, 1),
    (0, 7),
    (1, 8),
    (3, 8),
    (4, 7),
    (4, 4.6),
    (3, 3.6),
    (1, 3.6),
    (0, 4.6),
)
P_BOWL: Pts = ((0, 8), (0, 0), (3, 0), (4, 1), (4, 3.4), (3, 4.4), (0, 4.4))
BASE: dict[str, tuple[Pts, ...]] = {
    "1": (((0.8, 1.6), (2.4, 0), (2.4, 8)),),
    "2": (((0, 1.2), (0.9, 0), (3.1, 0), (4, 1), (4, 3), (0, 8), (4, 8)),),
    "3": (((0, 0), (4, 0), (1.6, 3.4), (3, 3.4), (4, 4.4), (4, 7), (3, 8), (1, 8), (0, 7)),),
    "4": (((3, 8), (3, 0), (0, 5.6), (4, 5.6)),),
    "5": (((4, 0), (0.4, 0), (0.2, 3.6), (3, 3.3), (4, 4.3), (4, 7), (3, 8), (1, 8), (0, 7)),),
    "6": (SIX,),
    "7": (((0, 0), (4, 0), (1.4, 8)),),
    "8": (_oct(0.8, 0.3, 0, 3.7, 3.8), _oct(0.9, 0, 3.8, 4, 8)),
    "9": (_rot(SIX),),
    "0": (_oct(1.0),),
    "A": (((0, 8), (2, 0), (4, 8)), ((0.7, 5.4), (3.3, 5.4))),
    "B": (
        ((0, 0), (0, 8), (3, 8), (4, 7), (4, 4.8), (3, 3.8), (0, 3.8)),
        ((0, 0), (2.8, 0), (3.7, 0.9), (3.7, 2.9), (2.8, 3.8)),
    ),
    "C": (((4, 1), (3, 0), (1, 0), (0, 1), (0, 7), (1, 8), (3, 8), (4, 7)),),
    "D": (((0, 0), (0, 8), (2.6, 8), (4, 6.6), (4, 1.4), (2.6, 0), (0, 0)),),
    "E": (((4, 0), (0, 0), (0, 8), (4, 8)), ((0, 3.8), (3, 3.8))),
    "F": (((4, 0), (0, 0), (0, 8)), ((0, 3.8), (3, 3.8))),
    "G": (((4, 1), (3, 0), (1, 0), (0, 1), (0, 7), (1, 8), (3, 8), (4, 7), (4, 4.4), (2.2, 4.4)),),
    "H": (((0, 0), (0, 8)), ((4, 0), (4, 8)), ((0, 3.9), (4, 3.9))),
    "I": (((2, 0), (2, 8)),),
    "J": (((4, 0), (4, 7), (3, 8), (1, 8), (0, 7), (0, 6)),),
    "K": (((0, 0), (0, 8)), ((4, 0), (0, 5.2)), ((1.4, 3.5), (4, 8))),
    "L": (((0, 0), (0, 8), (4, 8)),),
    "M": (((0, 8), (0, 0), (2, 5), (4, 0), (4, 8)),),
    "N": (((0, 8), (0, 0), (4, 8), (4, 0)),),
    "O": (_oct(1.6),),
    "P": (P_BOWL,),
    "Q": (_oct(1.6), ((2.4, 6), (4, 8.3))),
    "R": (P_BOWL, ((2, 4.4), (4, 8))),
    "S": (((4, 1), (3, 0), (1, 0), (0, 1), (0, 2.8), (1, 3.8), (3, 4.2), (4, 5.2), (4, 7), (3, 8), (1, 8), (0, 7)),),
    "T": (((0, 0), (4, 0)), ((2, 0), (2, 8))),
    "U": (((0, 0), (0, 7), (1, 8), (3, 8), (4, 7), (4, 0)),),
    "V": (((0, 0), (2, 8), (4, 0)),),
    "W": (((0, 0), (0.9, 8), (2, 1.6), (3.1, 8), (4, 0)),),
    "X": (((0, 0), (4, 8)), ((4, 0), (0, 8))),
    "Y": (((0, 0), (2, 4), (4, 0)), ((2, 4), (2, 8))),
    "Z": (((0, 0), (4, 0), (0, 8), (4, 8)),),
}
NARROW = {"1": 0.55, "I": 0.3}


@dataclass(frozen=True)
class GlyphStyle:
    """Shape options of the stroke font."""

    stroke: float = 0.14  # stroke width as a fraction of the glyph height
    square_o: bool = False  # O drawn like 0 (Brazilian plates)
    one_base: bool = True  # 1 with a foot
    open_four: bool = False  # 4 with an open top (US plates)
    serif_i: bool = True
    round_corners: float = 1.0  # scales the chamfer of 0/O
    one_flag: bool = True  # 1 with its flag; the old Brazilian plate font draws it as a bare bar, like its I

    @staticmethod
    def random(rng: np.random.Generator, kind: str = "any") -> GlyphStyle:
        """A random style; ``kind="br"`` gives the old Brazilian plate glyphs."""
        if kind == "br":
            return GlyphStyle(
                float(rng.uniform(0.12, 0.16)),
                True,
                bool(rng.random() < 0.15),
                False,
                False,
                float(rng.uniform(0.5, 0.9)),
                one_flag=False,
            )
        return GlyphStyle(
            float(rng.uniform(0.1, 0.18)),
            bool(rng.random() < 0.3),
            bool(rng.random() < 0.5),
            bool(rng.random() < 0.4),
            bool(rng.random() < 0.5),
            float(rng.uniform(0.6, 1.3)),
        )


def strokes(ch: str, style: GlyphStyle) -> tuple[Pts, ...]:
    """The polylines of ``ch`` in this style, on the 4 x 8 grid."""
    if ch in "0O":
        chamfer = (1.0 if (ch == "0" or style.square_o) else 1.6) * style.round_corners
        lines: tuple[Pts, ...] = (_oct(min(chamfer, 1.9)),)
        return lines
    lines = BASE[ch]
    if ch == "1" and not style.one_flag:
        lines = BASE["I"]
    if ch == "1" and style.one_base:
        lines = (*lines, ((1.0, 8.0), (3.8, 8.0)))
    if ch == "4" and style.open_four:
        lines = (((2.2, 0), (0, 5.6), (4, 5.6)), ((3, 3.2), (3, 8)))
    if ch == "I" and style.serif_i:
        lines = (*lines, ((1.0, 0.0), (3.0, 0.0)), ((1.0, 8.0), (3.0, 8.0)))
    return lines


def advance(ch: str) -> float:
    """Relative width of ``ch`` (1.0 for a full-width glyph)."""
    return NARROW.get(ch, 1.0)


def draw_glyph(mask: np.ndarray, ch: str, x: float, y: float, w: float, h: float, style: GlyphStyle) -> None:
    """Draw ``ch`` into the uint8 ``mask`` (255 = ink) inside the box (x, y, w, h)."""
    if ch not in BASE:
        return
    thick = max(1, round(style.stroke * h))
    pad = thick / 2
    sx = max(w - 2 * pad, 1.0) / 4.0
    sy = max(h - 2 * pad, 1.0) / 8.0
    shift = 4  # sub-pixel precision for cv2 drawing
    scale = float(1 << shift)
    if ch in NARROW:
        # Narrow glyphs keep their full-width shape, centred on the narrow cell that the layout gave them.
        full = w / NARROW[ch]
        x -= (full - w) / 2
        sx = max(full - 2 * pad, 1.0) / 4.0
    for line in strokes(ch, style):
        pts = np.array([[(x + pad + px * sx) * scale, (y + pad + py * sy) * scale] for px, py in line], np.int32)
        cv2.polylines(mask, [pts], False, 255, thick, cv2.LINE_AA, shift)
