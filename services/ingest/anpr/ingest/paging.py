"""Opaque page tokens for list RPCs: the sort key of the last item returned, bound to the request's filters."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from anpr.runtime.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def page_size(requested: int) -> int:
    """The page size to use for a requested one (0 = default; large values capped)."""
    return DEFAULT_PAGE_SIZE if requested <= 0 else min(requested, MAX_PAGE_SIZE)


def _fingerprint(filters: Any) -> str:
    return hashlib.sha256(json.dumps(filters, sort_keys=True, default=str).encode()).hexdigest()[:16]


def encode_token(position: Any, filters: Any) -> str:
    """A token that resumes after ``position`` for the same ``filters``."""
    document = json.dumps({"p": position, "f": _fingerprint(filters)})
    return base64.urlsafe_b64encode(document.encode()).decode().rstrip("=")


def decode_token(token: str, filters: Any) -> Any:
    """The position of a token (None for an empty token); INVALID_ARGUMENT when malformed or for other filters."""
    if not token:
        return None
    try:
        document = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        position, fingerprint = document["p"], document["f"]
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument("page_token is malformed") from None
    if fingerprint != _fingerprint(filters):
        raise InvalidArgument("page_token belongs to a request with different filters")
    return position
