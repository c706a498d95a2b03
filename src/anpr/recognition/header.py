"""Image format sniffing and header-only dimension parsing.

The pixel dimensions are read from the header before OpenCV allocates anything, so a decompression bomb (a tiny
file declaring 40000x40000 pixels) is refused without decoding it. Only the four formats of the contract are
accepted (JPEG, PNG, WebP, BMP); anything else is ``NOT_AN_IMAGE``, which also keeps OpenCV's rarer decoders away
from untrusted input.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from anpr.recognition.errors import CorruptImage, NotAnImage

# JPEG start-of-frame markers carrying the dimensions (SOF0..SOF15 minus DHT, JPG and DAC).
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """Format and declared size of an encoded image."""

    format: str
    width: int
    height: int


def sniff_format(data: bytes) -> str:
    """``jpeg``, ``png``, ``webp`` or ``bmp`` from the magic bytes; raises :class:`NotAnImage` otherwise."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:2] == b"BM":
        return "bmp"
    raise NotAnImage("the data is not a JPEG, PNG, WebP or BMP image")


def read_header(data: bytes) -> ImageHeader:
    """Format and declared width/height, parsed without decoding pixels."""
    fmt = sniff_format(data)
    try:
        if fmt == "jpeg":
            width, height = _jpeg_size(data)
        elif fmt == "png":
            if data[12:16] != b"IHDR":
                raise CorruptImage("the PNG image has no IHDR header")
            width, height = struct.unpack(">II", data[16:24])
        elif fmt == "webp":
            width, height = _webp_size(data)
        else:
            width, height = struct.unpack("<ii", data[18:26])
            # A negative BMP height means a top-down bitmap, not a negative size.
            width, height = abs(width), abs(height)
    except struct.error as exc:
        raise CorruptImage(f"the {fmt.upper()} header is truncated") from exc
    return ImageHeader(fmt, int(width), int(height))


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos = 2
    end = len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            raise CorruptImage("the JPEG image has a malformed marker segment")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return int(width), int(height)
        if marker == 0xDA:  # start of scan before any frame header
            break
        pos += 2 + length
    raise CorruptImage("the JPEG image is truncated before its frame header")


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        # Lossy: 14-bit dimensions after the 3-byte frame tag and 3-byte start code.
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        b = data[21:25]
        if len(b) < 4:
            raise struct.error("short")
        bits = int.from_bytes(b, "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        b = data[24:30]
        if len(b) < 6:
            raise struct.error("short")
        return int.from_bytes(b[0:3], "little") + 1, int.from_bytes(b[3:6], "little") + 1
    raise CorruptImage("the WebP image has an unknown chunk layout")
