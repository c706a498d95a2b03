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

from anpr.runtime import metrics
from anpr.runtime.context import Principal
from anpr.runtime.errors import ConfigurationError

log = logging.getLogger(__name__)


class Role(StrEnum):
    """Roles a client can hold; a method names the roles that may call it (docs/security.md has the table).

    Each role is what one kind of caller needs and no more: no role is both a service identity and an
    administrator, and the suite's own services hold one role each for the calls they make to each other.
    """

    CAMERA = "camera"  # pushes frames, only for the cameras bound to its identity (label `principal`)
    FRAME_RELAY = "frame-relay"  # a trusted gateway that pushes frames for any camera (grant sparingly)
    OPERATOR = "operator"  # control-room officer: watches and acknowledges alerts, looks up events with a purpose
    INGEST_ADMIN = "ingest-admin"  # registers cameras and pulled sources, handles dead letters
    HOTLIST_ADMIN = "hotlist-admin"  # maintains hotlists and their entries
    INVESTIGATOR = "investigator"  # searches stored reads, always with a stated purpose
    AUDITOR = "auditor"  # reads the audit trail
    INGEST_SERVICE = "ingest-service"  # ingest's identity towards recognize (Recognize) and hotlist (ReportReads)
    RECOGNIZE_ADMIN = "recognize-admin"  # reloads recognize's models


# Roles that were split; a tokens file still naming them is refused with a pointer to the replacements.
RETIRED_ROLES = {
    "service": "it was split into ingest-service (ingest's calls to recognize and hotlist), ingest-admin "
    "(cameras and sources), recognize-admin (ReloadModels) and frame-relay (frames for any camera)",
}


AccessPolicy = Mapping[str, frozenset[Role]]
"""Full method name (``/package.Service/Method``) -> roles allowed to call it."""


def token_digest(token: str) -> str:
    """The SHA-256 hex digest under which a token may be stored in the secrets file."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_tokens(document: object, source: str = "tokens file") -> dict[str, Principal]:
    """Validate a secrets document and index it by token digest.

    Format: ``{"clients": [{"identity": "cam-001", "roles": ["camera"], "token_sha256": "<hex>"}]}``;
    ``"token": "<plain>"`` may stand instead of ``token_sha256`` (development only: see :func:`plain_token_count`).
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
        retired = sorted(set(roles) & RETIRED_ROLES.keys())
        if retired:
            raise ConfigurationError(f"{where}: role {retired[0]!r} no longer exists: {RETIRED_ROLES[retired[0]]}")
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
        if any(c not in "0123456789abcdef" for c in digest):
            raise ConfigurationError(f"{where}: token_sha256 must be 64 hex digits")
        if digest in principals:
            raise ConfigurationError(f"{where}: the same token is given twice")
        principals[digest] = Principal(identity=identity, roles=frozenset(roles))
    return principals


def plain_token_count(document: object) -> int:
    """How many entries of a (valid) secrets document hold a plain token instead of its digest."""
    if not isinstance(document, dict) or not isinstance(document.get("clients"), list):
        return 0
    return sum(1 for client in document["clients"] if isinstance(client, dict) and "token" in client)


class TokensFileInvalid(Exception):
    """The tokens file changed and the new version is unreadable or invalid: every call is refused until fixed."""


class TokenStore:
    """Looks up bearer tokens, reloading the secrets file when its modification time changes.

    A file that cannot be read or parsed at start-up stops the service. One that breaks later *fails closed*:
    the edit may have been a revocation with a typo, so keeping the old tokens would keep a revoked client in.
    Until a valid file is back, :meth:`lookup` raises :class:`TokensFileInvalid` (the interceptor answers
    UNAVAILABLE; health and reflection stay public), ``anpr_auth_tokens_file_valid`` is 0 and
    ``anpr_auth_tokens_reload_failures_total`` counts the failed reloads (alert on either).
    """

    def __init__(self, path: Path, recheck_seconds: float = 2.0) -> None:
        self._path = path
        self._recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._mtime_ns = 0
        self._checked_at = 0.0
        self._principals: dict[str, Principal] = {}
        self._broken: str | None = None
        self._principals = self._read()
        metrics.TOKENS_FILE_VALID.set(1)

    def _read(self) -> dict[str, Principal]:
        try:
            stat = os.stat(self._path)
            document = json.loads(self._path.read_text())
        except (OSError, ValueError, RecursionError) as exc:
            raise ConfigurationError(f"cannot read tokens file {self._path}: {exc}") from exc
        self._mtime_ns = stat.st_mtime_ns
        principals = parse_tokens(document, str(self._path))
        plain = plain_token_count(document)
        if plain:
            log.warning(
                "tokens file %s holds %d plain tokens; store token_sha256 digests outside development",
                self._path,
                plain,
            )
        return principals

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < self._recheck_seconds:
            return
        with self._lock:
            self._checked_at = now
            try:
                mtime_ns = os.stat(self._path).st_mtime_ns
                if mtime_ns == self._mtime_ns and self._broken is None:
                    return
                self._mtime_ns = mtime_ns
                self._principals = self._read()
            except (OSError, ConfigurationError) as exc:
                # Fail closed: the broken edit may have been a revocation.
                if self._broken is None:
                    log.error("tokens file invalid, refusing every call until it is fixed: %s", exc)
                    metrics.TOKENS_RELOAD_FAILURES.inc()
                self._principals = {}
                self._broken = str(exc)
                metrics.TOKENS_FILE_VALID.set(0)
                return
            if self._broken is not None:
                log.warning("tokens file valid again; calls are accepted")
            self._broken = None
            metrics.TOKENS_FILE_VALID.set(1)
            log.info("reloaded tokens file", extra={"clients": len(self._principals)})

    def lookup(self, token: str) -> Principal | None:
        """The principal for a presented token, or None when the token is unknown.

        Raises :class:`TokensFileInvalid` while the tokens file is broken.
        """
        self._maybe_reload()
        if self._broken is not None:
            raise TokensFileInvalid(self._broken)
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
