"""Shared training pieces: alphabet and sizes of the contracts, seeding, thread limits, checkpoints."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from anpr.training.contracts import (
    ALPHABET,
    DETECTOR_SIZE,
    LETTERBOX_COLOUR,
    MODELS_DIR,
    PAD,
    READER_H,
    READER_W,
    SLOTS,
)

__all__ = ["ALPHABET", "DETECTOR_SIZE", "LETTERBOX_COLOUR", "MODELS_DIR", "PAD", "READER_H", "READER_W", "SLOTS"]
# Scratch space for checkpoints and logs, outside the repository.
WORK_DIR = Path(os.environ.get("ANPR_TRAIN_DIR", "/tmp/anpr-train"))  # noqa: S108


def setup(seed: int, threads: int) -> None:
    """Seed every generator and cap the threads (the training machine is shared)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    cv2.setNumThreads(1)


def encode_label(label: str) -> list[int]:
    """Slot targets of ``label``: one alphabet index per slot, padded with the pad character."""
    text = label[:SLOTS].ljust(SLOTS, PAD)
    return [ALPHABET.index(c) for c in text]


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically (a killed run never leaves half a checkpoint)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`."""
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    return state
