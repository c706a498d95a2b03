"""Alerts: raising (with repeat suppression), the ordered alert stream, and officers' verdicts.

Every change of an alert appends a row to ``alert_stream`` whose position comes from :func:`append_changes`, the
last statement of the writing transaction (see migration 0003 for why positions are dense and commit-ordered).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any

from anpr.hotlist import audit, metrics
from anpr.hotlist.db import ALERTS_CHANNEL, Connection, Pool
from anpr.hotlist.hits import Hit, hit_from_json, hit_to_json
from anpr.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from anpr.runtime.validation import parse_number_id


class AlertState(IntEnum):
    """Values of ``anpr.hotlist.v1.AlertState``."""

    OPEN = 1
    CONFIRMED = 2
    REJECTED = 3
    CANCELLED = 4


class Change(IntEnum):
    """Values of ``anpr.hotlist.v1.AlertChange``."""

    RAISED = 1
    ACKNOWLEDGED = 2
    REPEAT_SUPPRESSED = 3


OUTCOME_STATE = {1: AlertState.CONFIRMED, 2: AlertState.REJECTED, 3: AlertState.CANCELLED}
REJECTED = 2
MAX_NOTE = 2000


@dataclass(frozen=True)
class Alert:
    """An alert with the read that raised it (``event`` is the serialised PlateEvent without its crop)."""

    alert_id: int
    hit: Hit
    camera_id: str
    event: bytes
    crop: bytes | None
    raise_time: datetime
    state: AlertState
    outcome: int
    rejection_reason: int
    note: str
    acknowledged_by: str
    acknowledge_time: datetime | None
    suppressed_count: int
    last_suppressed_time: datetime | None


SELECT_ALERTS = """SELECT a.alert_id, a.hit, a.camera_id, a.raise_time, a.state, a.outcome, a.rejection_reason,
        a.note, a.acknowledged_by, a.acknowledge_time, a.suppressed_count, a.last_suppressed_time, r.event, r.crop
   FROM hotlist.alerts a JOIN hotlist.reads r USING (event_id)"""


SELECT_STREAM = """SELECT s.position, s.change, a.alert_id, a.hit, a.camera_id, a.raise_time, a.state, a.outcome,
        a.rejection_reason, a.note, a.acknowledged_by, a.acknowledge_time, a.suppressed_count, a.last_suppressed_time,
        r.event, r.crop
   FROM hotlist.alert_stream s JOIN hotlist.alerts a USING (alert_id) JOIN hotlist.reads r USING (event_id)"""


def alert_of(row: Any) -> Alert:
    """An alert from a row selected with :data:`SELECT_ALERTS`."""
    return Alert(
        alert_id=row["alert_id"],
        hit=hit_from_json(json.loads(row["hit"])),
        camera_id=row["camera_id"],
        event=bytes(row["event"]),
        crop=None if row["crop"] is None else bytes(row["crop"]),
        raise_time=row["raise_time"],
        state=AlertState(row["state"]),
        outcome=row["outcome"],
        rejection_reason=row["rejection_reason"],
        note=row["note"],
        acknowledged_by=row["acknowledged_by"],
        acknowledge_time=row["acknowledge_time"],
        suppressed_count=row["suppressed_count"],
        last_suppressed_time=row["last_suppressed_time"],
    )


async def alerts_by_id(connection: Connection, alert_ids: Sequence[int]) -> dict[int, Alert]:
    """Alerts by id with their reads."""
    rows = await connection.fetch(SELECT_ALERTS + " WHERE a.alert_id = ANY($1::bigint[])", list(alert_ids))
    return {row["alert_id"]: alert_of(row) for row in rows}


async def append_changes(connection: Connection, changes: Sequence[tuple[int, Change]]) -> int | None:
    """Number the changes and append them to the stream; call last in the transaction (it locks the head row)."""
    if not changes:
        return None
    last: int = await connection.fetchval(
        "UPDATE hotlist.alert_stream_head SET position = position + $1 RETURNING position", len(changes)
    )
    first = last - len(changes) + 1
    await connection.execute(
        """INSERT INTO hotlist.alert_stream (position, alert_id, change)
           SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[])""",
        list(range(first, last + 1)),
        [alert_id for alert_id, _ in changes],
        [int(change) for _, change in changes],
    )
    await connection.execute("SELECT pg_notify($1, $2)", ALERTS_CHANNEL, str(last))
    return last


async def raise_or_suppress(
    connection: Connection, event_id: str, camera_id: str, hit: Hit, window_seconds: float
) -> tuple[int, Change] | None:
    """Raise an alert for a hit, or count it on an open alert for the same plate and list within the window.

    None when this event already raised an alert for this entry (a later revision of the same pass).
    """
    raw = hit.raw
    # Wildcard entries cover many plates: repeats are grouped by the plate actually read, not by the pattern.
    plate = raw.matched_text if hit.entry.fields.is_pattern else raw.target
    # Serialise raisers for one plate and list, so two replicas cannot both raise "the first" alert.
    await connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"alert:{raw.hotlist_id}:{plate}")
    if await connection.fetchval(
        "SELECT 1 FROM hotlist.alerts WHERE event_id = $1 AND entry_id = $2", event_id, raw.entry_id
    ):
        return None
    if window_seconds > 0:
        open_id = await connection.fetchval(
            """SELECT alert_id FROM hotlist.alerts
                WHERE hotlist_id = $1 AND plate = $2 AND state = 1
                  AND raise_time > now() - make_interval(secs => $3)
                ORDER BY raise_time DESC LIMIT 1""",
            raw.hotlist_id,
            plate,
            window_seconds,
        )
        if open_id is not None:
            await connection.execute(
                """UPDATE hotlist.alerts SET suppressed_count = suppressed_count + 1, last_suppressed_time = now()
                    WHERE alert_id = $1""",
                open_id,
            )
            metrics.ALERTS_SUPPRESSED.inc()
            return open_id, Change.REPEAT_SUPPRESSED
    alert_id: int = await connection.fetchval(
        """INSERT INTO hotlist.alerts (event_id, entry_id, hotlist_id, hotlist_name, priority, camera_id, plate, hit)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb) RETURNING alert_id""",
        event_id,
        raw.entry_id,
        raw.hotlist_id,
        raw.hotlist_name,
        raw.priority,
        camera_id,
        plate,
        json.dumps(hit_to_json(hit)),
    )
    metrics.ALERTS_RAISED.inc()
    return alert_id, Change.RAISED


def parse_alert_id(text: str) -> int:
    """The numeric id behind an alert id string; NotFound for anything that cannot be one."""
    return parse_number_id(text, "alert", missing_is_not_found=True)


async def acknowledge(pool: Pool, alert_id: int, outcome: int, rejection_reason: int, note: str) -> tuple[Alert, bool]:
    """Record a verdict; repeating the same verdict changes nothing, a different one is FailedPrecondition."""
    if outcome not in OUTCOME_STATE:
        raise InvalidArgument("outcome must be CONFIRMED, REJECTED or CANCELLED")
    if outcome == REJECTED and not 1 <= rejection_reason <= 5:
        raise InvalidArgument("a REJECTED outcome needs a rejection_reason")
    if outcome != REJECTED and rejection_reason != 0:
        raise InvalidArgument("rejection_reason is only allowed with a REJECTED outcome")
    if len(note) > MAX_NOTE or "\x00" in note:
        raise InvalidArgument(f"note must have at most {MAX_NOTE} characters and no NUL")
    identity, _ = audit.actor()
    async with pool.acquire() as connection, connection.transaction():
        state = await connection.fetchrow(
            "SELECT state, outcome, rejection_reason FROM hotlist.alerts WHERE alert_id = $1 FOR UPDATE", alert_id
        )
        if state is None:
            raise NotFound("no such alert")
        if state["state"] != AlertState.OPEN:
            if state["outcome"] == outcome and state["rejection_reason"] == rejection_reason:
                return (await alerts_by_id(connection, [alert_id]))[alert_id], False
            raise FailedPrecondition("the alert already has a different verdict")
        await connection.execute(
            """UPDATE hotlist.alerts SET state = $2, outcome = $3, rejection_reason = $4, note = $5,
                   acknowledged_by = $6, acknowledge_time = now()
                WHERE alert_id = $1""",
            alert_id,
            int(OUTCOME_STATE[outcome]),
            outcome,
            rejection_reason,
            note,
            identity,
        )
        await audit.record(
            connection,
            "ALERT_ACKNOWLEDGED",
            target_type="alert",
            target_id=str(alert_id),
            details={"outcome": OUTCOME_STATE[outcome].name, "rejection_reason": rejection_reason},
        )
        await append_changes(connection, [(alert_id, Change.ACKNOWLEDGED)])
        alert = (await alerts_by_id(connection, [alert_id]))[alert_id]
    metrics.ALERTS_ACKNOWLEDGED.labels(OUTCOME_STATE[outcome].name.lower()).inc()
    return alert, True


async def count_open(pool: Pool) -> int:
    """Open alerts in the whole database (for the gauge)."""
    async with pool.acquire() as connection:
        value: int = await connection.fetchval("SELECT count(*) FROM hotlist.alerts WHERE state = 1")
    return value
