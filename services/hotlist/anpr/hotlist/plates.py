"""Plate text: normalisation, validation, OCR-confusion folding and the compact integer form the index uses.

Normalised plate text is upper-case A-Z and 0-9 only. Plates are short, so a plate of up to :data:`MAX_PLATE_LENGTH`
characters packs exactly into one 60-bit integer (6 bits per character, 0 = padding): the match index keys on
these integers instead of strings, which keeps a million entries and their deletion neighbourhoods in compact
numpy arrays.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from anpr.domain import plate_events
from anpr.runtime.errors import InvalidArgument

# The plate rules are the plate event contract's (anpr.domain.plate_events): what ingest emits, this service stores.
ALPHABET = plate_events.PLATE_ALPHABET
MIN_PLATE_LENGTH = plate_events.MIN_PLATE_LENGTH
MAX_PLATE_LENGTH = plate_events.MAX_PLATE_LENGTH
BITS = 6
_CODE = {char: index + 1 for index, char in enumerate(ALPHABET)}
_CODE_OF_BYTE = np.zeros(256, dtype=np.uint8)
for _char, _code in _CODE.items():
    _CODE_OF_BYTE[ord(_char)] = _code
_SEPARATORS = re.compile(r"[\s\-]+")
_VALID = re.compile(r"^[A-Z0-9]+$")


class InvalidPlate(InvalidArgument):
    """A plate that is not letters and digits (spaces and dashes allowed) of an acceptable length."""


def normalise_plate(text: str) -> str:
    """``ca 123-456`` -> ``CA123456``; raises :class:`InvalidPlate` (the message never repeats the text)."""
    cleaned = _SEPARATORS.sub("", text).upper()
    if not cleaned.isascii() or not _VALID.fullmatch(cleaned):
        raise InvalidPlate("plate must contain only letters A-Z, digits, spaces and dashes")
    if not MIN_PLATE_LENGTH <= len(cleaned) <= MAX_PLATE_LENGTH:
        raise InvalidPlate(f"plate must have {MIN_PLATE_LENGTH}-{MAX_PLATE_LENGTH} letters and digits")
    return cleaned


def is_normalised_plate(text: str) -> bool:
    """Whether ``text`` is already a valid normalised plate."""
    return plate_events.is_plate_text(text)


class Folding:
    """Maps each character to the representative of its OCR-confusion class (the class's first character)."""

    def __init__(self, classes: Iterable[str]) -> None:
        mapping: dict[str, str] = {}
        for group in classes:
            for char in group:
                mapping[char] = group[0]
        self.classes = tuple(classes)
        self._table = str.maketrans(mapping)

    def fold(self, text: str) -> str:
        """The text with every character replaced by its class representative."""
        return text.translate(self._table)

    def byte_table(self) -> bytes:
        """:meth:`fold` as a 256-entry table over ASCII bytes (to fold a million texts in numpy at once)."""
        return bytes(ord(self.fold(chr(code))) if code < 128 else code for code in range(256))

    def confusions(self, a: str, b: str) -> int:
        """Positions where equal-length ``a`` and ``b`` differ (by confusion-class substitutions)."""
        return sum(1 for x, y in zip(a, b, strict=True) if x != y)


def pack(text: str) -> int:
    """The 60-bit integer of a normalised (or folded) plate: character i sits at bits ``6 * (9 - i)``."""
    value = 0
    for char in text:
        value = (value << BITS) | _CODE[char]
    return value << (BITS * (MAX_PLATE_LENGTH - len(text)))


def delete_at(packed: int, position: int) -> int:
    """The packed text with the character at ``position`` removed (later characters move up one place)."""
    keep_high = BITS * (MAX_PLATE_LENGTH - position)
    high = (packed >> keep_high) << keep_high
    low = packed & ((1 << (BITS * (MAX_PLATE_LENGTH - 1 - position))) - 1)
    return high | (low << BITS)


def deletion_keys(text: str, depth: int) -> set[int]:
    """Packed forms of ``text`` and of every string made by deleting up to ``depth`` characters from it."""
    packed = pack(text)
    keys = {packed}
    if depth <= 0:
        return keys
    # Depth 1 inlined (the matcher's hot path): drop character i, move the rest up one place.
    length = len(text)
    for position in range(length):
        keep_high = BITS * (MAX_PLATE_LENGTH - position)
        keys.add(((packed >> keep_high) << keep_high) | ((packed & ((1 << (keep_high - BITS)) - 1)) << BITS))
    if depth == 1 or length <= 1:
        return keys
    level = {(key, length - 1) for key in keys if key != packed}
    for _ in range(depth - 1):
        following: set[tuple[int, int]] = set()
        for key, size in level:
            if size <= 1:
                continue
            for position in range(size):
                following.add((delete_at(key, position), size - 1))
        keys.update(key for key, _ in following)
        level = following
    return keys


def code_rows(texts: npt.NDArray[np.bytes_]) -> npt.NDArray[np.uint8]:
    """Normalised (or folded) ASCII texts as rows of :data:`MAX_PLATE_LENGTH` character codes (0 = padding)."""
    raw = texts.astype(f"S{MAX_PLATE_LENGTH}").view(np.uint8).reshape(len(texts), MAX_PLATE_LENGTH)
    return _CODE_OF_BYTE[raw]


def reversed_rows(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Each row of :func:`code_rows` with its text reversed (the padding stays at the end)."""
    lengths = (codes != 0).sum(axis=1)
    source = lengths[:, None] - 1 - np.arange(MAX_PLATE_LENGTH)[None, :]
    picked = np.take_along_axis(codes, np.maximum(source, 0), axis=1)
    return np.where(source >= 0, picked, 0).astype(np.uint8)


def pack_rows(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    """:func:`pack` of every row of :func:`code_rows` (vectorised)."""
    packed = np.zeros(len(codes), dtype=np.uint64)
    for position in range(MAX_PLATE_LENGTH):
        packed |= codes[:, position].astype(np.uint64) << np.uint64(BITS * (MAX_PLATE_LENGTH - 1 - position))
    return packed
