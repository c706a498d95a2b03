"""A service's tamper-evident audit trail (``<schema>.audit_log``, a hash chain): appending rows and verifying them.

Each service that keeps an audit trail chains its rows in the database (see the migration that creates
``audit_log_chain``): ``row_hash = sha256(previous_hash || content)``, numbered by ``chain_position``. The trail is
also append-only (UPDATE, DELETE and TRUNCATE raise), but the table's owner can disable triggers; the chain makes
such an edit visible afterwards. :func:`first_broken_row` is what an auditor (or a periodic job) runs; the head
it returns with :func:`chain_head` is what to copy outside the database, since dropping the newest rows leaves a
shorter chain that is still consistent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from anpr.runtime.context import current_principal, current_request_id
from anpr.runtime.database import Connection
from anpr.runtime.errors import ConfigurationError

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _schema(schema: str) -> str:
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ConfigurationError(f"invalid schema name {schema!r}")
    return schema


SYSTEM_ACTOR = "system"


def actor() -> tuple[str, list[str]]:
    """Identity and roles of the caller, or the service itself outside a call."""
    principal = current_principal()
    if principal is None:
        return SYSTEM_ACTOR, []
    return principal.identity, sorted(principal.roles)


@dataclass(frozen=True)
class AuditTrail:
    """The audit trail of one service's schema: ``AuditTrail("hotlist").record(...)`` appends to
    ``hotlist.audit_log``."""

    schema: str

    def __post_init__(self) -> None:
        _schema(self.schema)

    async def record(
        self,
        connection: Connection,
        action: str,
        *,
        target_type: str = "",
        target_id: str = "",
        purpose: str = "",
        case_reference: str = "",
        details: dict[str, Any] | None = None,
    ) -> int:
        """Append one row for the current caller (the database chains it); returns its id."""
        identity, roles = actor()
        audit_id: int = await connection.fetchval(
            f"""INSERT INTO {self.schema}.audit_log
                   (actor, actor_roles, action, target_type, target_id, purpose, case_reference, request_id, details)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb) RETURNING audit_id""",  # noqa: S608 - checked name
            identity,
            roles,
            action,
            target_type,
            target_id,
            purpose,
            case_reference,
            current_request_id() or "",
            json.dumps(details or {}),
        )
        return audit_id


@dataclass(frozen=True)
class ChainHead:
    """The newest link: how many rows the chain holds and the hash of the last one (hex)."""

    position: int
    row_hash: str


async def first_broken_row(connection: Connection, schema: str) -> int | None:
    """The audit id of the first row whose link or content does not match, or None when the chain is intact."""
    value = await connection.fetchval(f"SELECT {_schema(schema)}.audit_log_first_broken()")
    return None if value is None else int(value)


async def chain_head(connection: Connection, schema: str) -> ChainHead:
    """The newest link of the chain (position 0 and an empty hash for an empty trail)."""
    row = await connection.fetchrow(
        f"SELECT chain_position, row_hash FROM {_schema(schema)}.audit_log ORDER BY chain_position DESC LIMIT 1"  # noqa: S608
    )
    if row is None:
        return ChainHead(0, "")
    return ChainHead(int(row["chain_position"]), bytes(row["row_hash"]).hex())
