"""Frames for ingest tests: small real JPEGs, rendered plates, and Frame messages around them."""

from __future__ import annotations

import time
from typing import Any

import cv2
import numpy as np
from google.protobuf import timestamp_pb2

from anpr.api.common.v1 import image_pb2
from anpr.api.ingest.v1 import frame_pb2


def jpeg(width: int = 64, height: int = 48, value: int = 128) -> bytes:
    """A small valid JPEG."""
    image = np.full((height, width, 3), value, dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return bytes(data.tobytes())


def frame(camera_id: str, frame_id: str, data: bytes | None = None, at: float | None = None) -> frame_pb2.Frame:
    """A Frame message (a small grey JPEG unless data is given)."""
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(round((time.time() if at is None else at) * 1e9))
    return frame_pb2.Frame(
        camera_id=camera_id,
        frame_id=frame_id,
        capture_time=stamp,
        image=image_pb2.EncodedImage(data=jpeg() if data is None else data),
    )


def render_plates(plates: list[tuple[str, float, float]], width: int = 1280, height: int = 720) -> np.ndarray[Any, Any]:
    """A street-grey frame with white plates (black text) at the given (text, x, y) top-left positions."""
    image = np.full((height, width, 3), 90, dtype=np.uint8)
    for text, x, y in plates:
        plate_w, plate_h = 40 + 34 * len(text), 80
        x0, y0 = int(x), int(y)
        cv2.rectangle(image, (x0, y0), (x0 + plate_w, y0 + plate_h), (255, 255, 255), thickness=-1)
        cv2.rectangle(image, (x0, y0), (x0 + plate_w, y0 + plate_h), (0, 0, 0), thickness=3)
        cv2.putText(image, text, (x0 + 18, y0 + 58), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (0, 0, 0), 4, cv2.LINE_AA)
    return image


def encode(image: np.ndarray[Any, Any]) -> bytes:
    """JPEG bytes of an image."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return bytes(data.tobytes())
