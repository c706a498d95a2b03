"""The project's stroke font: the plate-specific shapes it exists for."""

from __future__ import annotations

import numpy as np

from anpr.synth.glyphs import GlyphStyle, draw_glyph, strokes


def test_brazilian_one_is_a_bare_bar_like_its_i() -> None:
    rng = np.random.default_rng(0)
    styles = [GlyphStyle.random(rng, "br") for _ in range(50)]
    assert all(not style.one_flag for style in styles)
    footless = [style for style in styles if not style.one_base]
    assert footless  # most old Brazilian ones have no foot either
    for style in footless:
        assert strokes("1", style) == strokes("I", style)
        a, b = np.zeros((64, 32), np.uint8), np.zeros((64, 32), np.uint8)
        draw_glyph(a, "1", 8, 0, 16, 64, style)
        draw_glyph(b, "I", 8, 0, 16, 64, style)
        assert np.array_equal(a, b)


def test_other_styles_keep_the_flagged_one() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        style = GlyphStyle.random(rng)
        assert style.one_flag
        assert strokes("1", style)[0] != strokes("I", style)[0]
