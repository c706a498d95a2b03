"""Square letterboxing exactly as open-image-models prepares YOLOv9 "end2end" detector input.

Reference: ``open_image_models/detection/core/yolo_v9/preprocess.py`` (``letterbox``) and ``postprocess.py``
(``convert_to_detection_result``) of ankandrew/open-image-models:

- scale ``r = min(S / h, S / w)`` (images smaller than ``S`` are scaled up);
- resized size ``(round(w * r), round(h * r))`` with bilinear interpolation;
- padding ``dw = (S - new_w) / 2``, ``dh = (S - new_h) / 2`` split as ``left = round(dw - 0.1)``,
  ``right = round(dw + 0.1)`` (likewise top/bottom), so an odd pixel goes to the right/bottom;
- pad value 114 on every channel, then BGR -> RGB, HWC -> CHW, ``/ 255`` as float32;
- boxes map back with ``x = (x' - dw) / r``, ``y = (y' - dh) / r`` using the fractional ``dw``/``dh``.

Models trained by this project follow the same contract, so operator models and ours share this code.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

PAD_VALUE = 114


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How one image was placed in the square input: scale and fractional padding."""

    ratio: float
    pad_x: float
    pad_y: float

    def unmap(self, boxes: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Map ``[K, 4]`` x1, y1, x2, y2 boxes from the model input back to the source image."""
        out = boxes.astype(np.float32, copy=True)
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.ratio
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.ratio
        return out


def letterbox_into(image: npt.NDArray[np.uint8], canvas: npt.NDArray[np.uint8]) -> Letterbox:
    """Resize BGR ``image`` into the square ``canvas`` (``[S, S, 3]``, already filled with the pad value)."""
    size = canvas.shape[0]
    h, w = image.shape[:2]
    ratio = min(size / h, size / w)
    # At least one pixel: decoding refuses extreme aspect ratios, but a zero side here would be an OpenCV assertion
    # failing every image of the batch.
    new_w, new_h = max(1, min(size, round(w * ratio))), max(1, min(size, round(h * ratio)))
    pad_x, pad_y = (size - new_w) / 2, (size - new_h) / 2
    left, top = round(pad_x - 0.1), round(pad_y - 0.1)
    resized = image if (w, h) == (new_w, new_h) else cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas[top : top + new_h, left : left + new_w] = resized
    return Letterbox(ratio, pad_x, pad_y)


def letterbox_batch(images: list[npt.NDArray[np.uint8]], size: int) -> tuple[npt.NDArray[np.float32], list[Letterbox]]:
    """Letterbox BGR images into one float32 NCHW RGB batch scaled to 0..1, with each image's placement."""
    canvas = np.full((len(images), size, size, 3), PAD_VALUE, dtype=np.uint8)
    boxes = [letterbox_into(image, canvas[i]) for i, image in enumerate(images)]
    # One vectorised conversion for the whole batch: BGR -> RGB, NHWC -> NCHW, 0..255 -> 0..1.
    batch = np.ascontiguousarray(canvas[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
    np.divide(batch, np.float32(255.0), out=batch)
    return batch, boxes
