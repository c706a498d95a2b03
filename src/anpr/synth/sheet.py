"""Sample sheets: a PNG grid of flat plates (every format), reader crops and scenes with their boxes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from anpr.synth.crops import reader_sample
from anpr.synth.formats import FORMATS
from anpr.synth.plate import render_plate
from anpr.synth.scene import render_scene

SHEET_W = 1600


def _label(img: np.ndarray, text: str, x: int, y: int) -> None:
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)


def _plates(rng: np.random.Generator) -> np.ndarray:
    rows: list[np.ndarray] = []
    row = np.full((86, SHEET_W, 3), 255, np.uint8)
    x = 4
    for fmt in FORMATS:
        for _ in range(2):
            p = render_plate(rng, fmt, height=64)
            img = p.image
            if img.shape[1] > 320:
                img = cv2.resize(img, (320, int(64 * 320 / img.shape[1])))
            if x + img.shape[1] > SHEET_W:
                rows.append(row)
                row = np.full((86, SHEET_W, 3), 255, np.uint8)
                x = 4
            row[: img.shape[0], x : x + img.shape[1]] = img
            _label(row, f"{fmt.name}: {p.label}", x, 80)
            x += img.shape[1] + 8
    rows.append(row)
    return np.vstack(rows)


def _crops(rng: np.random.Generator) -> np.ndarray:
    tiles = []
    for _ in range(36):
        s = reader_sample(rng)
        tile = np.full((80, 132, 3), 255, np.uint8)
        tile[:64, 2:130] = s.image
        _label(tile, s.label, 2, 76)
        tiles.append(tile)
    return np.vstack([np.hstack(tiles[i : i + 12]) for i in range(0, 36, 12)])


def _scenes(rng: np.random.Generator, width: int) -> np.ndarray:
    tiles = []
    for _ in range(4):
        s = render_scene(rng, width, width * 9 // 16)
        img = s.image.copy()
        for x1, y1, x2, y2 in s.boxes.astype(int):
            cv2.rectangle(img, (x1, y1), (x2, y2), (255, 0, 0), max(1, width // 640))
        tiles.append(cv2.resize(img, (SHEET_W // 2, SHEET_W // 2 * 9 // 16), interpolation=cv2.INTER_AREA))
    return np.vstack([np.hstack(tiles[0:2]), np.hstack(tiles[2:4])])


def write_sheet(out: Path, seed: int, scene_width: int = 1920) -> Path:
    """Write the sample sheet for ``seed`` to ``out`` (PNG); scenes are rendered ``scene_width`` pixels wide."""
    rng = np.random.default_rng(seed)
    crops = _crops(rng)
    crops = np.pad(crops, ((0, 0), (0, SHEET_W - crops.shape[1]), (0, 0)), constant_values=255)
    sheet = np.vstack([_plates(rng), crops, _scenes(rng, scene_width)])
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return out
