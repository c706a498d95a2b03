"""Video files for source and edge tests, written with OpenCV (MJPG in AVI: encodable everywhere)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np


def write_video(path: Path, frames: Iterable[np.ndarray[Any, Any]], fps: float) -> Path:
    """Write BGR frames (all the same size) to ``path``."""
    writer: cv2.VideoWriter | None = None
    for image in frames:
        if writer is None:
            height, width = image.shape[:2]
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
            assert writer.isOpened()
        writer.write(image)
    assert writer is not None, "no frames"
    writer.release()
    return path
