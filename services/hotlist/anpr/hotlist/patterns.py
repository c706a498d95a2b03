"""Wildcard patterns over normalised plate text: ``*`` any run of characters (none included), ``?`` exactly one.

``CA*456`` and ``CA12?456`` are valid; a pattern needs at least :data:`MIN_LITERALS` literal characters so that one
entry cannot match every plate in the city.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from anpr.runtime.errors import InvalidArgument

MIN_LITERALS = 3
MAX_PATTERN_LENGTH = 20
_SEPARATORS = re.compile(r"[\s\-]+")
_VALID = re.compile(r"^[A-Z0-9*?]+$")
_STARS = re.compile(r"\*{2,}")


class InvalidPattern(InvalidArgument):
    """A malformed wildcard pattern."""


def is_pattern(text: str) -> bool:
    """Whether the text contains a wildcard character."""
    return "*" in text or "?" in text


def normalise_pattern(text: str) -> str:
    """``ca*-456`` -> ``CA*456``; raises :class:`InvalidPattern` (the message never repeats the text)."""
    cleaned = _STARS.sub("*", _SEPARATORS.sub("", text).upper())
    if not cleaned.isascii() or not _VALID.fullmatch(cleaned):
        raise InvalidPattern("pattern must contain only letters A-Z, digits, '*' and '?'")
    if len(cleaned) > MAX_PATTERN_LENGTH:
        raise InvalidPattern(f"pattern must have at most {MAX_PATTERN_LENGTH} characters")
    if sum(1 for char in cleaned if char not in "*?") < MIN_LITERALS:
        raise InvalidPattern(f"pattern must have at least {MIN_LITERALS} literal characters")
    if not is_pattern(cleaned):
        raise InvalidPattern("pattern has no wildcard; add it as a plate")
    return cleaned


def to_regex(pattern: str) -> str:
    """The anchored regular expression of a normalised pattern."""
    return "^" + "".join(".*" if c == "*" else "." if c == "?" else c for c in pattern) + "$"


def to_like(pattern: str) -> str:
    """The SQL LIKE form of a normalised pattern (its characters never include LIKE's own ``%``, ``_`` or ``\\``)."""
    return pattern.replace("*", "%").replace("?", "_")


@dataclass(frozen=True)
class CompiledPattern:
    """A pattern ready to test plates: exact form and OCR-folded form."""

    exact: re.Pattern[str]
    folded: re.Pattern[str]
    literal_prefix: str

    @classmethod
    def of(cls, pattern: str, folded_pattern: str) -> CompiledPattern:
        """Compile a normalised pattern and its folded twin."""
        prefix = re.split(r"[*?]", pattern, maxsplit=1)[0]
        return cls(re.compile(to_regex(pattern)), re.compile(to_regex(folded_pattern)), prefix)
