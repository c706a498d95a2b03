"""Vehicle details and facades: drawn where asked, deterministic, safe at frame edges; scenes with and without them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from anpr.synth import render_scene, vehicle
from anpr.synth.fonts import badge_fonts

Drawer = Callable[[np.random.Generator, np.ndarray], None]

DRAWERS: dict[str, tuple[Drawer, tuple[int, int, int, int]]] = {
    "emblem": (lambda rng, img: vehicle.emblem(rng, img, 100, 60, 60), (70, 30, 130, 90)),
    "badge": (lambda rng, img: vehicle.badge(rng, img, 40, 50, 20), (40, 50, 240, 70)),
    "lamp": (lambda rng, img: vehicle.lamp(rng, img, (30, 40, 90, 60)), (30, 40, 90, 60)),
    "highlights": (lambda rng, img: vehicle.highlights(rng, img, (20, 20, 180, 100)), (20, 20, 180, 100)),
    "body": (lambda rng, img: vehicle.shaded_body(rng, img, (10, 10, 150, 90), [90.0, 40.0, 40.0]), (10, 10, 150, 90)),
}


def _canvas() -> np.ndarray:
    return np.full((120, 240, 3), 100, np.uint8)


@pytest.mark.parametrize("name", sorted(DRAWERS))
def test_detail_draws_inside_its_box_only(name: str) -> None:
    if name == "badge" and not badge_fonts():
        pytest.skip("no Debian fonts installed: badges need a font")
    draw, (x1, y1, x2, y2) = DRAWERS[name]
    img = _canvas()
    draw(np.random.default_rng(3), img)
    changed = np.argwhere((img != 100).any(axis=2))
    assert len(changed) > 0
    assert changed[:, 0].min() >= y1
    assert changed[:, 0].max() < y2
    assert changed[:, 1].min() >= x1
    assert changed[:, 1].max() < x2


@pytest.mark.parametrize("name", sorted(DRAWERS))
def test_detail_is_deterministic(name: str) -> None:
    draw, _ = DRAWERS[name]
    a, b = _canvas(), _canvas()
    draw(np.random.default_rng(8), a)
    draw(np.random.default_rng(8), b)
    assert np.array_equal(a, b)


def test_details_clip_at_frame_edges_and_skip_when_tiny() -> None:
    img = _canvas()
    rng = np.random.default_rng(1)
    vehicle.emblem(rng, img, -10, -5, 50)
    vehicle.emblem(rng, img, 235, 118, 50)
    vehicle.badge(rng, img, 200, 110, 30)
    vehicle.lamp(rng, img, (220, 100, 300, 140))
    vehicle.highlights(rng, img, (200, 90, 400, 200))
    untouched = _canvas()
    vehicle.emblem(rng, untouched, 50, 50, 3)
    vehicle.badge(rng, untouched, 50, 50, 3)
    assert np.array_equal(untouched, _canvas())


def test_facade_draws_a_block_of_windows() -> None:
    img = np.full((360, 640, 3), 30, np.uint8)
    vehicle.facade(np.random.default_rng(0), img)
    assert (img != 30).any(axis=2).mean() > 0.01


def test_scenes_with_and_without_details() -> None:
    plain = render_scene(np.random.default_rng(7), 640, 360, details=False)
    again = render_scene(np.random.default_rng(7), 640, 360, details=False)
    detailed = render_scene(np.random.default_rng(7), 640, 360)
    assert np.array_equal(plain.image, again.image)
    assert not np.array_equal(plain.image, detailed.image)
    for scene in (plain, detailed):
        assert scene.boxes.shape == (len(scene.labels), 4)
