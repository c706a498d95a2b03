"""Bearer-token authentication and role-based access.

Tokens live in a secrets file (a Kubernetes Secret in production) that maps each token, or better its SHA-256, to
a client identity and roles. The file is re-read when it changes, so tokens can be rotated without a restart.
Each service declares which roles may call each of its methods; a method it does not list is denied to everyone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path

from anpr.runtime.context import Principal
from anpr.runtime.errors import ConfigurationError

log = logging.getLogger(__name__)


class Role(StrEnum):
    """Roles a client can hold; a method names the roles that may call it."""

    CAMERA = "camera"  # pushes frames for its own camera
    OPERATOR = "operator"  # control-room officer: watches and acknowledges alerts
    HOTLIST_ADMIN = "hotlist-admin"  # maintains hotlists and their entries
    INVESTIGATOR = "investigator"  # searches stored reads, always with a stated purpose
    AUDITOR = "auditor"  # reads the audit trail
    SERVICE = "service"  # another service of the suite (ingest -> recognize, ingest -> hotlist)


AccessPolicy = Mapping[str, frozenset[Role]]
"""Full method name (``/package.Service/Method``) -> roles allowed to call it."""


def token_digest(token: str) -> str:
    """The SHA-256 hex digest under which a token may be stored in the secrets file."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_tokens(document: object, source: str = "tokens file") -> dict[str, Principal]:
    """Validate a secrets document and index it by token digest.

    Format: ``{"clients": [{"identity": "cam-001", "roles": ["camera"], "token_sha256": "<hex>"}]}``;
    ``"token": "<plain>"`` may stand instead of ``token_sha256`` (development only).
    """
    if not isinstance(document, dict) or not isinstance(document.get("clients"), list):
        raise ConfigurationError(f'{source}: expected an object with a "clients" list')
    known_roles = {role.value for role in Role}
    principals: dict[str, Principal] = {}
    for index, client in enumerate(document["clients"]):
        where = f"{source}: clients[{index}]"
        if not isinstance(client, dict):
            raise ConfigurationError(f"{where}: expected an object")
        identity = client.get("identity")
        roles = client.get("roles")
        if not isinstance(identity, str) or not identity:
            raise ConfigurationError(f"{where}: identity must be a non-empty string")
        if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
            raise ConfigurationError(f"{where}: roles must be a non-empty list of strings")
        unknown = sorted(set(roles) - known_roles)
        if unknown:
            raise ConfigurationError(f"{where}: unknown roles {unknown}; known: {sorted(known_roles)}")
        digest = client.get("token_sha256")
        plain = client.get("token")
        if isinstance(plain, str) and plain and digest is None:
            digest = token_digest(plain)
        if not isinstance(digest, str) or len(digest) != 64:
            raise ConfigurationError(f"{where}: needs token_sha256 (64 hex digits) or token")
        digest = digest.lower()
        if digest in principals:
            raise ConfigurationError(f"{where}: the same token is given twice")
        principals[digest] = Principal(identity=identity, roles=frozenset(roles))
    return principals


class TokenStore:
    """Looks up bearer tokens, reloading the secrets file when its modification time changes."""

    def __init__(self, path: Path, recheck_seconds: float = 2.0) -> None:
        self._path = path
        self._recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._mtime_ns = 0
        self._checked_at = 0.0
        self._principals = self._read()

    def _read(self) -> dict[str, Principal]:
        try:
            stat = os.stat(self._path)
            document = json.loads(self._path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read tokens file {self._path}: {exc}") from exc
        self._mtime_ns = stat.st_mtime_ns
        return parse_tokens(document, str(self._path))

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < self._recheck_seconds:
            return
        with self._lock:
            self._checked_at = now
            try:
                if os.stat(self._path).st_mtime_ns == self._mtime_ns:
                    return
                self._principals = self._read()
                log.info("reloaded tokens file", extra={"clients": len(self._principals)})
            except (OSError, ConfigurationError) as exc:
                # Keep serving with the last good tokens rather than locking every client out.
                log.error("tokens file not reloaded, keeping the previous one: %s", exc)

    def lookup(self, token: str) -> Principal | None:
        """The principal for a presented token, or None when the token is unknown."""
        self._maybe_reload()
        return self._principals.get(token_digest(token))


def bearer_token(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    """The token of an ``authorization: Bearer <token>`` header, if present."""
    for key, value in metadata:
        if key.lower() == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def roles(*names: Role) -> frozenset[Role]:
    """Shorthand for building access policies."""
    return frozenset(names)
