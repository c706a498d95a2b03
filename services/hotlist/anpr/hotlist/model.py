"""Domain records of hotlists and entries, and the validation every write goes through.

Text limits keep rows small and stop hostile input early; NUL characters are refused because PostgreSQL text
cannot hold them (a late database error would fail a whole batch with a less helpful message).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from anpr.hotlist.patterns import is_pattern, normalise_pattern
from anpr.hotlist.plates import normalise_plate
from anpr.runtime import validation
from anpr.runtime.errors import InvalidArgument

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")  # matched whole: "$" would let "x\n" through
SHORT_TEXT = 200
LONG_TEXT = 2000
ACTIONS = range(0, 5)
STRICTNESS = range(0, 4)


def check_name(name: str) -> str:
    """A valid hotlist name, or InvalidArgument."""
    if not NAME.fullmatch(name):
        raise InvalidArgument("hotlist name must be 1-64 characters of a-z 0-9 . _ - starting with a letter or digit")
    return name


def check_text(label: str, value: str, limit: int) -> str:
    """A free-text field within its length limit and without NUL or other control characters."""
    return validation.check_text(label, value, limit)


@dataclass(frozen=True)
class HotlistFields:
    """The settable fields of a hotlist."""

    display_name: str = ""
    description: str = ""
    source: str = ""
    priority: int = 0
    default_action: int = 0
    default_instructions: str = ""
    active: bool = True
    strictness: int = 0
    min_match_score: float = 0.0
    suppression_seconds: float | None = None
    default_ttl_seconds: float | None = None

    def validated(self) -> HotlistFields:
        """Self, or InvalidArgument naming the first bad field."""
        check_text("display_name", self.display_name, SHORT_TEXT)
        check_text("description", self.description, LONG_TEXT)
        check_text("source", self.source, SHORT_TEXT)
        check_text("default_instructions", self.default_instructions, LONG_TEXT)
        if not 0 <= self.priority <= 100:
            raise InvalidArgument("priority must be in [0, 100]")
        if self.default_action not in ACTIONS:
            raise InvalidArgument("default_action is not a known action")
        if self.strictness not in STRICTNESS:
            raise InvalidArgument("strictness is not a known strictness")
        if not 0.0 <= self.min_match_score <= 1.0:
            raise InvalidArgument("min_match_score must be in [0, 1]")
        if self.suppression_seconds is not None and not 0 <= self.suppression_seconds <= 30 * 86400:
            raise InvalidArgument("alert_suppression_window must be between 0 and 30 days")
        if self.default_ttl_seconds is not None and not 0 < self.default_ttl_seconds <= 100 * 365 * 86400:
            raise InvalidArgument("default_entry_ttl must be positive and at most 100 years")
        return self


UPDATABLE = frozenset(HotlistFields.__dataclass_fields__)


@dataclass(frozen=True)
class Hotlist:
    """A stored hotlist."""

    hotlist_id: int
    name: str
    fields: HotlistFields
    entry_count: int
    revision: int
    epoch: int
    create_time: datetime
    created_by: str
    update_time: datetime
    updated_by: str


@dataclass(frozen=True)
class EntryFields:
    """An entry as a caller gives it, after normalisation (``target`` is a plate or a pattern)."""

    target: str
    is_pattern: bool
    reason: str = ""
    make: str = ""
    model: str = ""
    colour: str = ""
    notes: str = ""
    external_reference: str = ""
    action: int = 0
    instructions: str = ""
    expire_time: datetime | None = None


def entry_target(plate: str, pattern: str) -> tuple[str, bool]:
    """The normalised target of an entry given as a plate or a pattern (exactly one)."""
    if plate and pattern:
        raise InvalidArgument("an entry sets either plate or pattern, not both")
    if pattern or is_pattern(plate):
        return normalise_pattern(pattern or plate), True
    if not plate:
        raise InvalidArgument("an entry needs a plate or a pattern")
    return normalise_plate(plate), False


def check_entry(entry: EntryFields) -> EntryFields:
    """Validate the free-text fields of an entry."""
    check_text("reason", entry.reason, LONG_TEXT)
    for label in ("make", "model", "colour", "external_reference"):
        check_text(label, getattr(entry, label), SHORT_TEXT)
    check_text("notes", entry.notes, LONG_TEXT)
    check_text("instructions", entry.instructions, LONG_TEXT)
    if entry.action not in ACTIONS:
        raise InvalidArgument("action is not a known action")
    return entry


@dataclass(frozen=True)
class Entry:
    """A stored entry."""

    entry_id: int
    hotlist_name: str
    fields: EntryFields
    added_by: str
    add_time: datetime
    updated_by: str
    update_time: datetime
