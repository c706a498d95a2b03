"""Input preparation of PaddleOCR-style CTC plate readers, shared by the service and the training tools.

PaddleOCR recognisers read one text line: a BGR crop resized to a fixed height (48 px) and a width that follows the
crop's aspect ratio, scaled to ``(x / 255 - 0.5) / 0.5`` and padded on the right with zeros (mid grey). A plate
reader adds two things:

- the width is the crop's natural width times ``width_scale`` (plates squeezed horizontally read as well once the
  model has seen them in training, and cost proportionally less), clamped to ``[min_width, max_width]`` and
  rounded up to a multiple of 8 (the model's horizontal stride, one CTC frame per 8 px);
- a two-row plate is read as one line by cutting it into its top and bottom half (with some overlap, since a loose
  box moves the gap between the rows) and setting the halves side by side, top row first. The reader does this
  for crops whose aspect ratio is below a threshold, and keeps whichever of the one-line and two-row readings is
  more confident.

Training (``anpr.training.ctc_plate_reader``) imports these functions, so serving sees exactly what training saw.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
ImageArray = npt.NDArray[np.uint8]

# Each half keeps this fraction of the crop's height: rows of a two-row plate sit in the top and bottom 45 %, and
# a loose or shifted box moves the gap between them by up to a tenth of the height.
ROW_SHARE = 0.56


def split_rows(crop: ImageArray) -> ImageArray:
    """A two-row crop as one line: its top and bottom halves (overlapping) side by side, top row first."""
    h = crop.shape[0]
    share = max(1, round(h * ROW_SHARE))
    top, bottom = crop[:share], crop[h - share :]
    return np.ascontiguousarray(np.concatenate([top, bottom], axis=1))


def line_width(
    width: int, height: int, *, input_height: int, width_scale: float, min_width: int, max_width: int
) -> int:
    """The model input width of a ``width`` x ``height`` crop (a multiple of 8 within the limits)."""
    natural = input_height * (width / max(height, 1)) * width_scale
    clamped = min(max_width, max(min_width, natural))
    return max(8, math.ceil(clamped / 8.0) * 8)


def normalise(crop: ImageArray, width: int, input_height: int) -> FloatArray:
    """``[3, input_height, width]`` float input of a BGR crop (no padding)."""
    resized = cv2.resize(crop, (width, input_height), interpolation=cv2.INTER_LINEAR)
    chw = resized.transpose(2, 0, 1).astype(np.float32)
    return np.asarray(chw * np.float32(2.0 / 255.0) - np.float32(1.0), dtype=np.float32)


def stack(lines: list[FloatArray]) -> FloatArray:
    """Lines of different widths as one batch ``[N, 3, H, max W]``, padded on the right with zeros."""
    if not lines:
        raise ValueError("no lines to stack")
    height = lines[0].shape[1]
    width = max(line.shape[2] for line in lines)
    batch = np.zeros((len(lines), 3, height, width), dtype=np.float32)
    for i, line in enumerate(lines):
        batch[i, :, :, : line.shape[2]] = line
    return batch
