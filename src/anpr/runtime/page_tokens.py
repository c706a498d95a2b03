"""Opaque page tokens: the position after which the next page starts, bound to the request's filters and signed.

A token is URL-safe base64 of ``HMAC-SHA256(key, body)[:16] + body``, where the body is compact JSON of the
position and a digest of the filters. The signature is checked before anything is parsed, so a caller can neither
forge a position or another request's filters nor feed the JSON parser a document it did not receive from us
(deeply nested JSON raises RecursionError). The length is bounded before decoding.

The key comes from ``page_token_key_file`` (one secret shared by every replica of a service, so a listing may go on
at any of them, also after a restart) or, without it, is made once per process: then a token is valid on the
replica that issued it, for the life of that process, and elsewhere refused with INVALID_ARGUMENT.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from pathlib import Path
from typing import Any

from anpr.runtime.errors import ConfigurationError, InvalidArgument

MAX_TOKEN_CHARS = 2048
_MAC_BYTES = 16


class PageTokens:
    """Encodes and checks page tokens with one key."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)

    def encode(self, position: Any, filters: Any) -> str:
        """A token that resumes after ``position`` for the same ``filters``."""
        body = json.dumps({"p": position, "f": _digest(filters)}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(self._mac(body) + body).decode().rstrip("=")

    def decode(self, token: str, filters: Any) -> Any:
        """The position of a token (None for an empty one); InvalidArgument when not ours or for other filters."""
        if not token:
            return None
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidArgument("page_token is malformed")
        try:
            raw = base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode("ascii"))
        except (ValueError, binascii.Error):
            raise InvalidArgument("page_token is malformed") from None
        mac, body = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(body)):
            raise InvalidArgument("page_token is malformed or was issued by another server; start the listing again")
        document = json.loads(body)  # ours: signed above
        if document["f"] != _digest(filters):
            raise InvalidArgument("page_token was issued for a request with different filters")
        return document["p"]

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]


def _digest(filters: Any) -> str:
    return hashlib.sha256(json.dumps(filters, sort_keys=True, default=str).encode()).hexdigest()[:16]


MIN_KEY_BYTES = 32

# One key per process, shared by every listing of the service (replaced by use_key_file at start-up).
_PROCESS = PageTokens()


def use_key_file(path: Path) -> None:
    """Sign and check this process's page tokens with the secret in ``path`` (ConfigurationError when unusable)."""
    global _PROCESS
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigurationError(f"cannot read page_token_key_file {path}: {exc.strerror}") from exc
    if len(key) < MIN_KEY_BYTES:
        raise ConfigurationError(f"page_token_key_file {path} holds fewer than {MIN_KEY_BYTES} bytes")
    _PROCESS = PageTokens(key)


def encode_token(position: Any, filters: Any) -> str:
    """A token of this process that resumes after ``position`` for the same ``filters``."""
    return _PROCESS.encode(position, filters)


def decode_token(token: str, filters: Any) -> Any:
    """The position of a token of this process (None for an empty one), else InvalidArgument."""
    return _PROCESS.decode(token, filters)
