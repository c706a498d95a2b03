"""Image decoding: domain errors for bad input, limits checked from the header, reduced decoding, crops."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from anpr.recognize.pipeline.errors import (
    CorruptImage,
    DataTooLarge,
    DimensionsTooLarge,
    EmptyImage,
    ImageInputError,
    NotAnImage,
    ZeroSizeImage,
)
from anpr.recognize.pipeline.header import read_header
from anpr.recognize.pipeline.imaging import DecodeLimits, choose_reduction, decode_image
from anpr.recognize.pipeline.types import Box
from anpr.runtime.errors import InvalidArgument, ResourceExhausted
from testkit.plate_models import encode, plate_frame


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` pixels (a decompression bomb's header)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")


def frame() -> np.ndarray:
    return plate_frame("CA123456", (640, 360), (200, 150, 160, 40))


@pytest.mark.parametrize(
    ("data", "error", "reason"),
    [
        (b"", EmptyImage, "EMPTY"),
        (b"hello, this is not an image at all", NotAnImage, "NOT_AN_IMAGE"),
        (b"GIF89a\x01\x00\x01\x00", NotAnImage, "NOT_AN_IMAGE"),
        (encode(frame(), ".jpg")[:3000], CorruptImage, "CORRUPT"),  # truncated JPEG
        (encode(frame(), ".png")[:200], CorruptImage, "CORRUPT"),  # truncated PNG
        (b"\xff\xd8\xff\xe0" + b"\x00" * 20, CorruptImage, "CORRUPT"),  # JPEG magic, garbage body
        (bomb_png(0, 100), ZeroSizeImage, "ZERO_SIZE"),
        (bomb_png(100, 0), ZeroSizeImage, "ZERO_SIZE"),
        (bomb_png(40_000, 40_000), DimensionsTooLarge, "DIMENSIONS_TOO_LARGE"),  # decompression bomb
        (bomb_png(100_000, 10), DimensionsTooLarge, "DIMENSIONS_TOO_LARGE"),  # absurd side
    ],
    ids=["empty", "text", "gif", "truncated-jpeg", "truncated-png", "garbage-jpeg", "zero-w", "zero-h", "bomb", "side"],
)
def test_bad_input(data: bytes, error: type[ImageInputError], reason: str) -> None:
    with pytest.raises(error) as caught:
        decode_image(data)
    assert caught.value.reason == reason
    assert isinstance(caught.value, InvalidArgument)
    assert caught.value.message  # a clear message for the caller


def test_bomb_refused_before_decoding() -> None:
    # The header alone decides: the limit is checked before OpenCV would allocate 4.8 GB.
    with pytest.raises(DimensionsTooLarge, match="40000x40000 pixels"):
        decode_image(bomb_png(40_000, 40_000))


def test_data_too_large_is_resource_exhausted() -> None:
    with pytest.raises(DataTooLarge) as caught:
        decode_image(encode(frame()), limits=DecodeLimits(max_bytes=100))
    assert isinstance(caught.value, ResourceExhausted)
    assert caught.value.reason == "DATA_TOO_LARGE"


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".webp"])
def test_headers_and_full_decode(ext: str) -> None:
    data = encode(frame(), ext)
    header = read_header(data)
    assert (header.width, header.height) == (640, 360)
    image = decode_image(data)
    assert image.detect_image.shape == (360, 640, 3)
    assert (image.width, image.height, image.reduction) == (640, 360, 1)


@pytest.mark.parametrize(
    ("size", "detect", "fmt", "expected"),
    [
        ((1920, 1080), 640, "jpeg", 2),
        ((1920, 1080), 384, "jpeg", 4),
        ((1920, 1080), 96, "jpeg", 8),
        ((1280, 720), 640, "jpeg", 2),
        ((1000, 600), 640, "jpeg", 1),
        ((1920, 1080), 640, "png", 1),  # only JPEG decodes faster at reduced size
        ((1920, 1080), 0, "jpeg", 1),
    ],
)
def test_choose_reduction(size: tuple[int, int], detect: int, fmt: str, expected: int) -> None:
    assert choose_reduction(*size, detect, fmt) == expected
    assert choose_reduction(*size, detect, fmt, max_reduction=2) == min(expected, 2)


def test_reduced_decode_and_full_resolution_crops() -> None:
    big = plate_frame("CA123456", (1920, 1080), (900, 600, 240, 60))
    image = decode_image(encode(big, ".jpg"), detect_size=384)
    assert image.reduction == 4
    assert image.detect_image.shape == (270, 480, 3)
    assert image.scale == pytest.approx((4.0, 4.0))
    box = Box(900, 600, 240, 60)
    # Wide enough in the reduced frame: cut from it (60 px wide there).
    small = image.crop(box, min_width=32)
    assert small.shape[:2] == (15, 60)
    # Too narrow for the reader there: cut from the full-resolution decode instead.
    full = image.crop(box, min_width=128)
    assert full.shape[:2] == (60, 240)
    # The plate is white with black text; the grey frame around it is not in the crop.
    assert np.abs(full.astype(int) - big[600:660, 900:1140].astype(int)).mean() < 8


def test_crop_margin_and_clipping() -> None:
    image = decode_image(encode(frame()))
    assert image.crop(Box(600, 340, 100, 50)).shape[:2] == (20, 40)  # clipped at the right/bottom edges
    assert image.crop(Box(200, 150, 160, 40), margin=0.1).shape[:2] == (48, 192)
