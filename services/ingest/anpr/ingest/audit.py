"""Ingest's audit trail: every lookup of stored plate events, with who made it, why and under which request.

Rows go to ``ingest.audit_log`` (append-only and hash-chained, see migration 0005) in the same transaction as
the lookup they record, so there is no lookup without its row. Ingest keeps its own trail rather than calling the
hotlist service: a lookup must not succeed while its record is elsewhere and unreachable, and ingest's database
is the one that holds the events. Actions use the names of hotlist's trail where they mean the same.
"""

from __future__ import annotations

import json
from typing import Any

from anpr.runtime.context import current_principal, current_request_id
from anpr.runtime.database import Connection

SYSTEM_ACTOR = "system"
PLATE_EVENTS_READ = "PLATE_EVENTS_READ"
DEAD_LETTERS_READ = "DEAD_LETTERS_READ"


async def record(
    connection: Connection,
    action: str,
    *,
    target_type: str = "",
    target_id: str = "",
    purpose: str = "",
    case_reference: str = "",
    details: dict[str, Any] | None = None,
) -> int:
    """Append one row for the current caller; returns its id."""
    principal = current_principal()
    identity, roles = (SYSTEM_ACTOR, []) if principal is None else (principal.identity, sorted(principal.roles))
    audit_id: int = await connection.fetchval(
        """INSERT INTO ingest.audit_log
               (actor, actor_roles, action, target_type, target_id, purpose, case_reference, request_id, details)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb) RETURNING audit_id""",
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
