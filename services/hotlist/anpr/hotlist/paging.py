"""Opaque page tokens: the position after which the next page starts, bound to the filters of the request.

A token is URL-safe base64 of a small JSON document; a token made for other filters is refused, so a caller
cannot page through one search with the filters of another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from anpr.runtime.errors import InvalidArgument


def filters_digest(filters: Any) -> str:
    """A short fingerprint of the request's filters (anything JSON can encode)."""
    return hashlib.sha256(json.dumps(filters, sort_keys=True, default=str).encode()).hexdigest()[:16]


def encode_token(position: Any, filters: Any) -> str:
    """A token that resumes after ``position`` for the same filters."""
    document = json.dumps({"p": position, "f": filters_digest(filters)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(document.encode()).decode().rstrip("=")


def decode_token(token: str, filters: Any) -> Any:
    """The position of a token, None for an empty one; InvalidArgument when malformed or for other filters."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        document = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument("page_token is malformed") from None
    if not isinstance(document, dict) or "p" not in document:
        raise InvalidArgument("page_token is malformed")
    if document.get("f") != filters_digest(filters):
        raise InvalidArgument("page_token was issued for different filters")
    return document["p"]


def page_size(requested: int, default: int, maximum: int) -> int:
    """The effective page size: the default for 0, capped at the maximum."""
    return default if requested <= 0 else min(requested, maximum)
