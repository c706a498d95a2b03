"""Sizes of the shipped detector contract and where the shipped models live (no torch: evaluation and tests import
this)."""

from __future__ import annotations

import os
from pathlib import Path

from anpr.recognition.models import MODELS_DIR as SHIPPED_MODELS_DIR

DETECTOR_SIZE = 384  # the detector's training input
# Its serving input: the weights fit any size, and trained with plates up to 180 px of a 384 input, the detector
# finds small plates at 512 that it misses at 384 (synthetic 1080p recall 91.0 -> 94.7 %, docs/BENCHMARKS.md).
SERVING_DETECTOR_SIZE = 512
LETTERBOX_COLOUR = 114
MODELS_DIR = SHIPPED_MODELS_DIR
# Scratch space for checkpoints, downloads and logs, outside the repository.
WORK_DIR = Path(os.environ.get("ANPR_TRAIN_DIR", "/tmp/anpr-train"))  # noqa: S108
