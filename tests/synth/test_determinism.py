"""Same seed, same pixels: plates, reader crops and scenes; scene boxes lie inside the frame on the plates."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from anpr.recognition.paddle_ctc import HIDDEN
from anpr.synth import reader_sample, render_plate, render_scene
from anpr.synth.crops import HIDDEN_SHARE
from anpr.synth.fonts import WANTED, available_fonts, missing_fonts
from anpr.synth.sheet import write_sheet


def test_plate_is_deterministic() -> None:
    a = render_plate(np.random.default_rng(5))
    b = render_plate(np.random.default_rng(5))
    assert a.label == b.label
    assert np.array_equal(a.image, b.image)


def test_reader_sample_is_deterministic_and_sized() -> None:
    a = reader_sample(np.random.default_rng(9), (128, 64))
    b = reader_sample(np.random.default_rng(9), (128, 64))
    assert a.image.shape == (64, 128, 3)
    assert a.label == b.label
    assert np.array_equal(a.image, b.image)
    c = reader_sample(np.random.default_rng(10), (128, 64))
    assert not np.array_equal(a.image, c.image)


def test_scene_is_deterministic() -> None:
    a = render_scene(np.random.default_rng(2), 480, 270)
    b = render_scene(np.random.default_rng(2), 480, 270)
    assert a.labels == b.labels
    assert np.array_equal(a.boxes, b.boxes)
    assert np.array_equal(a.image, b.image)


def test_scene_boxes_inside_frame_and_on_plates() -> None:
    rng = np.random.default_rng(4)
    seen = 0
    for _ in range(6):
        scene = render_scene(rng, 640, 360, min_width_1080p=120, max_width_1080p=400)
        h, w = scene.image.shape[:2]
        assert scene.boxes.shape == (len(scene.labels), 4)
        for x1, y1, x2, y2 in scene.boxes:
            assert 0 <= x1 < x2 <= w
            assert 0 <= y1 < y2 <= h
            patch = scene.image[int(y1) : int(y2), int(x1) : int(x2)].astype(np.float32)
            assert patch.size > 0
            assert patch.std() > 3.0  # characters on a background, not an empty area
            seen += 1
    assert seen > 0


def test_fonts_found_when_installed() -> None:
    fonts = available_fonts()
    if not fonts:
        import pytest

        pytest.skip("no Debian fonts installed: the renderer falls back to its stroke font")
    assert all(path.is_file() for path in fonts)


def test_missing_fonts_are_the_wanted_ones_not_installed() -> None:
    installed = {path.name for path in available_fonts()}
    missing = missing_fonts()
    assert installed.isdisjoint(missing)
    assert installed | set(missing) == set(WANTED)


def test_sheet_writes_png(tmp_path: Path) -> None:
    out = write_sheet(tmp_path / "sheet.png", seed=0, scene_width=480)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_scene_marks_the_plates_a_bar_crosses() -> None:
    """About a tenth of the plates get a bar across their characters; the scene says which, for the evaluation."""
    rng = np.random.default_rng(11)
    flags: list[bool] = []
    for _ in range(40):
        scene = render_scene(rng, 480, 270, min_width_1080p=120, max_width_1080p=400)
        assert len(scene.occluded) == len(scene.labels)
        flags.extend(scene.occluded)
    assert 0 < sum(flags) < len(flags) / 3


def test_plates_know_where_their_characters_are() -> None:
    """Each character's x extent, in reading order within each row, inside the plate; unknown only where glyphs
    touch or break (a few plates in a hundred)."""
    rng = np.random.default_rng(21)
    plates = [render_plate(rng) for _ in range(120)]
    known = [p for p in plates if p.char_spans is not None]
    assert len(known) >= 0.8 * len(plates)
    for plate in known:
        assert plate.char_spans is not None
        assert len(plate.char_spans) == len(plate.label)
        width = plate.image.shape[1]
        assert all(0 <= x1 < x2 <= width for x1, x2 in plate.char_spans)
        if " / " not in plate.display:  # one row: left to right
            lefts = [x1 for x1, _ in plate.char_spans]
            assert lefts == sorted(lefts)


def test_a_bar_across_a_reader_crop_marks_the_runs_it_hides() -> None:
    """With ``occlusion=1`` every plate whose characters are located gets a bar; each run of characters it hides
    becomes one HIDDEN mark and the rest of the label is kept in order. Without it, labels are plain."""
    marked = 0
    for i in range(60):
        sample = reader_sample(np.random.default_rng([22, i]), (160, 48), occlusion=1.0)
        plain = render_plate(np.random.default_rng([22, i])).label  # the same first draw: the plate under the bar
        assert HIDDEN + HIDDEN not in sample.label
        kept = sample.label.replace(HIDDEN, "")
        assert len(kept) < len(plain) or HIDDEN not in sample.label
        it = iter(plain)
        assert all(ch in it for ch in kept)  # a subsequence of the plate's label
        marked += HIDDEN in sample.label
    assert marked >= 20
    assert 0 < HIDDEN_SHARE < 1
    rng = np.random.default_rng(22)
    assert all(HIDDEN not in reader_sample(rng, (160, 48)).label for _ in range(30))
