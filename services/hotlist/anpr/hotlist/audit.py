"""The audit trail: who changed a list, acknowledged an alert, searched reads or read the trail, and why.

Rows are written in the same transaction as the action they record, so an action without its audit row cannot
happen. Actions are stored by the name of ``anpr.hotlist.v1.AuditAction`` without its prefix.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anpr.hotlist.db import Connection, Pool
from anpr.hotlist.paging import decode_token, encode_token
from anpr.runtime import audit_chain
from anpr.runtime.errors import InvalidArgument

ACTIONS = (
    "HOTLIST_CREATED",
    "HOTLIST_UPDATED",
    "HOTLIST_DELETED",
    "ENTRIES_UPSERTED",
    "ENTRIES_DELETED",
    "ENTRIES_IMPORTED",
    "ALERT_ACKNOWLEDGED",
    "READS_SEARCHED",
    "AUDIT_LOG_READ",
    "RETENTION_PURGED",
)


# The caller as the trail records it (other modules name who changed a list or an alert the same way).
actor = audit_chain.actor


@dataclass(frozen=True)
class AuditRecord:
    """One row of the trail."""

    audit_id: int
    record_time: datetime
    actor: str
    actor_roles: list[str]
    action: str
    target_type: str
    target_id: str
    purpose: str
    case_reference: str
    request_id: str
    details: dict[str, Any]


# Append one row for the current caller to ``hotlist.audit_log``; returns its id.
record = audit_chain.AuditTrail("hotlist").record


@dataclass(frozen=True)
class AuditQuery:
    """Filters of GetAuditLog."""

    start: datetime | None
    end: datetime | None
    actor: str
    actions: Sequence[str]
    target_id: str


async def read_log(connection: Connection, query: AuditQuery, before_id: int | None, limit: int) -> list[AuditRecord]:
    """Rows matching the filters, newest first, below ``before_id`` (keyset paging)."""
    rows = await connection.fetch(
        """SELECT * FROM hotlist.audit_log
            WHERE ($1::timestamptz IS NULL OR record_time >= $1)
              AND ($2::timestamptz IS NULL OR record_time < $2)
              AND ($3 = '' OR actor = $3)
              AND (cardinality($4::text[]) = 0 OR action = ANY($4))
              AND ($5 = '' OR target_id = $5)
              AND ($6::bigint IS NULL OR audit_id < $6)
            ORDER BY audit_id DESC
            LIMIT $7""",
        query.start,
        query.end,
        query.actor,
        list(query.actions),
        query.target_id,
        before_id,
        limit,
    )
    return [
        AuditRecord(
            audit_id=row["audit_id"],
            record_time=row["record_time"],
            actor=row["actor"],
            actor_roles=list(row["actor_roles"]),
            action=row["action"],
            target_type=row["target_type"],
            target_id=row["target_id"],
            purpose=row["purpose"],
            case_reference=row["case_reference"],
            request_id=row["request_id"],
            details=json.loads(row["details"]),
        )
        for row in rows
    ]


async def read_page(pool: Pool, query: AuditQuery, token: str, size: int) -> tuple[list[AuditRecord], str]:
    """One page of the trail (newest first) and the next token; reading is itself recorded."""
    unknown = set(query.actions) - set(ACTIONS)
    if unknown:
        raise InvalidArgument("actions contains an unknown action")
    if len(query.actor) > 200 or len(query.target_id) > 200:
        raise InvalidArgument("actor and target_id must have at most 200 characters")
    filters = {
        "start": query.start.isoformat() if query.start else None,
        "end": query.end.isoformat() if query.end else None,
        "actor": query.actor,
        "actions": sorted(query.actions),
        "target_id": query.target_id,
    }
    before = decode_token(token, filters)
    async with pool.acquire() as connection, connection.transaction():
        found = await read_log(connection, query, before, size + 1)
        more = len(found) > size
        found = found[:size]
        await record(connection, "AUDIT_LOG_READ", target_type="audit_log", details={"filters": filters})
    return found, encode_token(found[-1].audit_id, filters) if more else ""
