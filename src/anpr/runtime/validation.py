"""Request validation shared by every service: what any field of any request must satisfy, checked once at the edge.

:func:`request_problem` walks a decoded request through its descriptor and names the first value no handler can
use safely, whatever the field: a Timestamp or Duration outside protobuf's documented range (``ToDatetime`` raises
on them), a string with NUL or other control characters (PostgreSQL text cannot hold NUL), an unsigned integer
above the int64 range (PostgreSQL ``bigint``), a non-finite float, or an enum number the schema does not define.
The interceptor pipeline runs it on every request message, unary or streamed, so handlers never see these values.

The helpers below cover what depends on the field's meaning: ids and numbers carried in strings are matched in
full (``re.fullmatch``; ``$`` would accept a trailing newline) against ASCII digits (``str.isdigit`` accepts
``'²'``, which ``int`` refuses) with a length bound (``int`` refuses 4,300 digits and more).
"""

from __future__ import annotations

import math
import re
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from anpr.runtime.errors import InvalidArgument, NotFound

INT64_MAX = 2**63 - 1
# google/protobuf/timestamp.proto: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
TIMESTAMP_SECONDS = range(-62_135_596_800, 253_402_300_799 + 1)
# google/protobuf/duration.proto: about +-10,000 years.
DURATION_SECONDS = range(-315_576_000_000, 315_576_000_000 + 1)
NANOS = range(-999_999_999, 999_999_999 + 1)

# Tab, line feed and carriage return are text; every other C0 control character and DEL is not.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_DIGITS = re.compile(r"[0-9]{1,18}")  # ASCII only, and always within int64
_UNSIGNED = (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64)
_FLOATS = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)


def request_problem(message: Message) -> str | None:
    """What makes a request unusable by any handler (naming the field), or None when it is acceptable."""
    return _message_problem(message, "")


def _message_problem(message: Message, prefix: str) -> str | None:
    descriptor = message.DESCRIPTOR
    special = _well_known_problem(descriptor, message, prefix)
    if special is not None:
        return special
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if _is_map(field):
            problem = _map_problem(field, value, path)
        elif field.is_repeated:
            problem = next((p for v in value if (p := _value_problem(field, v, path)) is not None), None)
        else:
            problem = _value_problem(field, value, path)
        if problem is not None:
            return problem
    return None


def _well_known_problem(descriptor: Any, message: Any, path: str) -> str | None:
    name = descriptor.full_name
    where = path.rstrip(".") or "request"
    if name == "google.protobuf.Timestamp":
        if message.seconds not in TIMESTAMP_SECONDS or not 0 <= message.nanos < 1_000_000_000:
            return f"{where} is outside 0001-01-01 to 9999-12-31"
    elif name == "google.protobuf.Duration":
        seconds, nanos = message.seconds, message.nanos
        if seconds not in DURATION_SECONDS or nanos not in NANOS or (seconds > 0 > nanos) or (seconds < 0 < nanos):
            return f"{where} is not a valid duration (at most 10,000 years)"
    return None


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _map_problem(field: FieldDescriptor, value: Any, path: str) -> str | None:
    entry = field.message_type
    assert entry is not None  # a map field's entry type
    key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
    for key, item in value.items():
        problem = _value_problem(key_field, key, f"{path} key") or _value_problem(value_field, item, f"{path}[]")
        if problem is not None:
            return problem
    return None


def _value_problem(field: FieldDescriptor, value: Any, path: str) -> str | None:
    kind = field.type
    if kind in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
        return _message_problem(value, f"{path}.")
    if kind == FieldDescriptor.TYPE_STRING:
        return f"{path} must not contain control characters" if _CONTROL.search(value) else None
    if kind in _UNSIGNED:
        return f"{path} must be at most {INT64_MAX}" if value > INT64_MAX else None
    if kind in _FLOATS:
        return None if math.isfinite(value) else f"{path} must be a finite number"
    enum = field.enum_type
    if enum is not None and enum.values_by_number.get(value) is None:
        return f"{path} is not a known {enum.name} value"
    return None


def check_text(label: str, value: str, limit: int) -> str:
    """A free-text field within ``limit`` characters and without control characters other than tab and newline."""
    if len(value) > limit:
        raise InvalidArgument(f"{label} must have at most {limit} characters")
    if _CONTROL.search(value):
        raise InvalidArgument(f"{label} must not contain control characters")
    return value


def check_id(pattern: re.Pattern[str], value: str, message: str) -> str:
    """``value`` when all of it matches ``pattern`` (no trailing newline slips past ``$``), else InvalidArgument."""
    if pattern.fullmatch(value) is None:
        raise InvalidArgument(message)
    return value


def parse_number_id(value: str, label: str, *, missing_is_not_found: bool = False) -> int:
    """The integer behind a numeric id string: 1-18 ASCII digits, so it always fits PostgreSQL ``bigint``.

    With ``missing_is_not_found`` a string that cannot be an id is NotFound (it names nothing), else InvalidArgument.
    """
    if _DIGITS.fullmatch(value) is None:
        if missing_is_not_found:
            raise NotFound(f"no such {label}")
        raise InvalidArgument(f"{label} must be 1-18 digits 0-9")
    return int(value)
