"""Sizes and alphabet of the shipped model contracts (no torch: evaluation and tests import this)."""

from __future__ import annotations

from pathlib import Path

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_"
PAD = "_"
SLOTS = 10
READER_H, READER_W = 64, 128
DETECTOR_SIZE = 384  # the detector's training input
# Its serving input: the weights fit any size, and trained with plates up to 180 px of a 384 input, the detector
# finds small plates at 512 that it misses at 384 (synthetic 1080p recall 91.0 -> 94.7 %, docs/BENCHMARKS.md).
SERVING_DETECTOR_SIZE = 512
LETTERBOX_COLOUR = 114
MODELS_DIR = Path(__file__).resolve().parents[3] / "services" / "recognize" / "anpr" / "recognize" / "models"
