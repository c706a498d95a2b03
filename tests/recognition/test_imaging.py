"""Image decoding: domain errors for bad input, limits checked from the header, reduced decoding, crops."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
import simplejpeg  # type: ignore[import-untyped,unused-ignore]
from PIL import Image

from anpr.recognition.errors import (
    CorruptImage,
    DataTooLarge,
    DimensionsTooLarge,
    EmptyImage,
    ImageInputError,
    NotAnImage,
    UnusableDimensions,
    ZeroSizeImage,
)
from anpr.recognition.header import read_header
from anpr.recognition.imaging import DecodeLimits, choose_reduction, decode_image
from anpr.recognition.types import Box
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
        (encode(np.zeros((1, 4000, 3), np.uint8), ".png"), UnusableDimensions, "INVALID_ARGUMENT"),  # issue 19
        (encode(np.zeros((300, 7, 3), np.uint8), ".png"), UnusableDimensions, "INVALID_ARGUMENT"),  # too thin
        (encode(np.zeros((20, 420, 3), np.uint8), ".jpg"), UnusableDimensions, "INVALID_ARGUMENT"),  # 21:1
    ],
    ids=[
        "empty",
        "text",
        "gif",
        "truncated-jpeg",
        "truncated-png",
        "garbage-jpeg",
        "zero-w",
        "zero-h",
        "bomb",
        "side",
        "sliver",
        "thin",
        "elongated",
    ],
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


# JPEG through simplejpeg, OpenCV as the fallback ------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1920, 1080), (1001, 333)])
def test_jpeg_decodes_like_opencv(size: tuple[int, int]) -> None:
    # The same libjpeg-turbo DCT and upsampling: full and reduced decodes are pixel-identical to OpenCV's.
    data = encode(plate_frame("CA123456", size, (300, 100, 320, 80)), ".jpg")
    buffer = np.frombuffer(data, dtype=np.uint8)
    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4}
    for detect_size, reduction in ((0, 1), (size[0] // 2, 2), (size[0] // 4, 4)):
        image = decode_image(data, detect_size=detect_size)
        assert image.reduction == reduction
        expected = cv2.imdecode(buffer, flags[reduction] | cv2.IMREAD_IGNORE_ORIENTATION)
        full = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
        assert expected is not None
        assert full is not None
        assert image.detect_image.shape == expected.shape
        assert np.array_equal(image.detect_image, expected)
        assert image.detect_image.flags.c_contiguous
        assert np.array_equal(image.full(), full)


def test_jpeg_with_recoverable_damage_falls_back_to_opencv() -> None:
    data = encode(frame(), ".jpg")
    marker = data.index(b"\xff\xc4")  # the first Huffman table
    damaged = data[:marker] + b"\x00" * 10 + data[marker:]  # stray bytes before a marker
    with pytest.raises(ValueError, match="extraneous bytes"):
        simplejpeg.decode_jpeg(damaged, colorspace="BGR")  # strict: refuses what libjpeg only warns about
    image = decode_image(damaged)
    assert np.array_equal(image.detect_image, decode_image(data).detect_image)


def test_corrupt_jpeg_with_end_marker_is_still_corrupt() -> None:
    data = encode(frame(), ".jpg")
    marker = data.index(b"\xff\xc4")
    broken = data[: marker + 4] + b"\xff" * 20 + data[marker + 24 :]  # a Huffman table neither decoder accepts
    with pytest.raises(CorruptImage):
        decode_image(broken)


def _pillow_jpeg(mode: str, size: tuple[int, int], **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, "white" if mode != "CMYK" else (0, 255, 255, 0)).save(buffer, "JPEG", **options)
    return buffer.getvalue()


def test_grayscale_and_cmyk_jpegs_decode_to_bgr() -> None:
    gray = decode_image(_pillow_jpeg("L", (64, 32)))
    assert gray.detect_image.shape == (32, 64, 3)
    assert gray.detect_image.min() >= 250
    cmyk = decode_image(_pillow_jpeg("CMYK", (64, 32)))  # no cyan, full magenta and yellow: red
    assert cmyk.detect_image.shape == (32, 64, 3)
    assert cmyk.detect_image[0, 0].tolist() == pytest.approx([0, 0, 255], abs=4)


def test_exif_orientation_is_ignored() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    data = _pillow_jpeg("RGB", (1600, 400), exif=exif.tobytes(), progressive=True)
    for detect_size in (0, 400):
        image = decode_image(data, detect_size=detect_size)
        assert (image.width, image.height) == (1600, 400)
        assert image.detect_image.shape[1] > image.detect_image.shape[0]  # stored geometry, not displayed
        assert image.full().shape == (400, 1600, 3)
