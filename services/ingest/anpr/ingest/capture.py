"""Reading frames with OpenCV's FFmpeg backend, off the event loop.

OpenCV calls block (network reads, decoding) but release the GIL, so each call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import cv2
import numpy as np

_T = TypeVar("_T")


@dataclass(frozen=True)
class StreamInfo:
    """What the opened stream says about itself."""

    fps: float  # 0 when the stream does not say


class VideoReader:
    """One opened ``cv2.VideoCapture``; every method is a coroutine that runs OpenCV in a thread.

    Cancelling a coroutine does not stop its thread: a task cancelled during ``grab`` leaves the grab running while
    its ``finally`` releases the capture from another thread, and ``cv2.VideoCapture`` is not safe for that (it
    crashes the process). A lock serialises every call on the capture, and nothing runs after the release.
    """

    def __init__(self, capture: Any, info: StreamInfo) -> None:
        self._capture = capture
        self.info = info
        self._lock = threading.Lock()
        self._released = False

    def _locked(self, operation: Callable[[Any], _T], default: _T) -> _T:
        with self._lock:
            return default if self._released else operation(self._capture)

    @classmethod
    async def open(cls, uri: str, open_timeout_seconds: float = 10.0) -> VideoReader | None:
        """Open ``uri`` (RTSP, HTTP MJPEG, file path, a device index or ``/dev/videoN``); None when it cannot be."""

        def open_capture() -> VideoReader | None:
            timeout_ms = int(open_timeout_seconds * 1000)
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
            if uri.isdigit():  # a local camera by index: whatever backend the platform has (V4L2 on Linux)
                capture = cv2.VideoCapture(int(uri))
            elif uri.startswith("/dev/video"):
                capture = cv2.VideoCapture(uri, cv2.CAP_V4L2)
            else:
                capture = cv2.VideoCapture(uri, cv2.CAP_FFMPEG, params)
            if not capture.isOpened():
                capture.release()
                return None
            fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
            # Some streams report nonsense (e.g. 90000, the RTP clock); treat that as unknown.
            return cls(capture, StreamInfo(fps=fps if 0 < fps <= 240 else 0.0))

        return await asyncio.to_thread(open_capture)

    async def read(self) -> np.ndarray[Any, Any] | None:
        """The next frame (BGR), or None at the end of the stream or on a read error."""

        def read(capture: Any) -> np.ndarray[Any, Any] | None:
            ok, image = capture.read()
            return image if ok else None

        return await asyncio.to_thread(self._locked, read, None)

    async def grab(self) -> bool:
        """Skip one frame without decoding it into an image (cheap for frames sampling drops)."""
        return bool(await asyncio.to_thread(self._locked, lambda capture: bool(capture.grab()), False))

    async def retrieve(self) -> np.ndarray[Any, Any] | None:
        """Decode the frame last grabbed."""

        def retrieve(capture: Any) -> np.ndarray[Any, Any] | None:
            ok, image = capture.retrieve()
            return image if ok else None

        return await asyncio.to_thread(self._locked, retrieve, None)

    async def close(self) -> None:
        """Release the stream (after any call still running on it); safe to call twice."""

        def release(capture: Any) -> None:
            capture.release()
            self._released = True

        await asyncio.to_thread(self._locked, release, None)


async def encode_jpeg(image: np.ndarray[Any, Any], quality: int = 90) -> bytes:
    """JPEG bytes of a BGR image, encoded in a thread."""

    def encode() -> bytes:
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError("JPEG encoding failed")
        return bytes(data.tobytes())

    return await asyncio.to_thread(encode)
