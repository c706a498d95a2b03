"""Plate frames and recesses: the plate stays where its label box says, the frame and recess lie around it."""

from __future__ import annotations

import numpy as np

from anpr.synth.mount import bare, frame_plate, recess, warp_onto
from anpr.synth.plate import render_plate


def test_framed_plate_keeps_the_plate_inside_a_larger_image() -> None:
    rng = np.random.default_rng(3)
    for _ in range(10):
        plate = render_plate(rng).image
        framed = frame_plate(rng, plate)
        h, w = plate.shape[:2]
        (x1, y1), _, (x2, y2), _ = framed.plate_corners
        assert (x2 - x1, y2 - y1) == (w, h)
        assert framed.image.shape[0] > h
        assert framed.image.shape[1] > w
        # The plate's middle is the plate's own pixels: a frame covers at most its rim.
        cy, cx = int(y1) + h // 2, int(x1) + w // 2
        assert np.array_equal(
            framed.image[cy, cx - w // 4 : cx + w // 4], plate[h // 2, w // 2 - w // 4 : w // 2 + w // 4]
        )


def test_warp_onto_places_the_plate_on_its_quad_and_the_frame_around_it() -> None:
    rng = np.random.default_rng(8)
    plate = np.full((40, 160, 3), 250, np.uint8)
    framed = frame_plate(rng, plate)
    canvas = np.zeros((300, 500, 3), np.uint8)
    quad = np.array([[170, 130], [330, 130], [330, 170], [170, 170]], np.float32)
    warp_onto(canvas, framed, quad)
    assert canvas[140:160, 180:320].mean() > 240  # the plate where its quad is
    assert canvas[:100].max() == 0
    assert canvas[200:].max() == 0
    plain = np.zeros_like(canvas)
    warp_onto(plain, bare(plate), quad)
    assert plain[:125].max() == 0
    assert plain[175:].max() == 0


def test_recess_is_drawn_around_the_plate_box_within_the_image() -> None:
    rng = np.random.default_rng(1)
    img = np.full((200, 300, 3), 128, np.uint8)
    recess(rng, img, (100.0, 90.0, 100.0, 25.0), [128.0, 128.0, 128.0])
    changed = np.argwhere((img != 128).any(axis=2))
    assert len(changed) > 100 * 25  # at least the plate's area
    (ymin, xmin), (ymax, xmax) = changed.min(axis=0), changed.max(axis=0)
    assert xmin <= 100
    assert xmax >= 199
    assert ymin <= 90
    assert ymax >= 114
