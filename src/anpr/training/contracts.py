"""Sizes and alphabet of the shipped model contracts (no torch: evaluation and tests import this)."""

from __future__ import annotations

from pathlib import Path

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_"
PAD = "_"
SLOTS = 10
READER_H, READER_W = 64, 128
DETECTOR_SIZE = 384
LETTERBOX_COLOUR = 114
MODELS_DIR = Path(__file__).resolve().parents[3] / "services" / "recognize" / "anpr" / "recognize" / "models"
