"""SQL of hotlists and entries (asyncpg, every value a parameter).

Writers call :func:`lock_for_change` first: it bumps the list's revision and holds the row lock until commit, so
changes of one list are serialised and replicas can follow them by revision (see migration 0002).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from anpr.hotlist.db import Connection
from anpr.hotlist.model import Entry, EntryFields, Hotlist, HotlistFields
from anpr.runtime.errors import AlreadyExists, InvalidArgument, NotFound

_ENTRY_COLUMNS = """e.entry_id, h.name AS hotlist_name, e.target, e.is_pattern, e.reason, e.make, e.model, e.colour,
    e.notes, e.external_reference, e.action, e.instructions, e.expire_time, e.added_by, e.add_time, e.updated_by,
    e.update_time"""


def hotlist_of(row: asyncpg.Record) -> Hotlist:
    """A hotlist from its row."""
    return Hotlist(
        hotlist_id=row["hotlist_id"],
        name=row["name"],
        fields=HotlistFields(
            display_name=row["display_name"],
            description=row["description"],
            source=row["source"],
            priority=row["priority"],
            default_action=row["default_action"],
            default_instructions=row["default_instructions"],
            active=row["active"],
            strictness=row["strictness"],
            min_match_score=float(row["min_match_score"]),
            suppression_seconds=row["suppression_seconds"],
            default_ttl_seconds=row["default_ttl_seconds"],
        ),
        entry_count=row["entry_count"],
        revision=row["revision"],
        epoch=row["epoch"],
        create_time=row["create_time"],
        created_by=row["created_by"],
        update_time=row["update_time"],
        updated_by=row["updated_by"],
    )


def entry_of(row: asyncpg.Record) -> Entry:
    """An entry from a row selected with ``_ENTRY_COLUMNS``."""
    return Entry(
        entry_id=row["entry_id"],
        hotlist_name=row["hotlist_name"],
        fields=EntryFields(
            target=row["target"],
            is_pattern=row["is_pattern"],
            reason=row["reason"],
            make=row["make"],
            model=row["model"],
            colour=row["colour"],
            notes=row["notes"],
            external_reference=row["external_reference"],
            action=row["action"],
            instructions=row["instructions"],
            expire_time=row["expire_time"],
        ),
        added_by=row["added_by"],
        add_time=row["add_time"],
        updated_by=row["updated_by"],
        update_time=row["update_time"],
    )


async def insert_hotlist(connection: Connection, name: str, fields: HotlistFields, actor: str) -> Hotlist:
    """Create a list; AlreadyExists when the name is taken."""
    try:
        row = await connection.fetchrow(
            """INSERT INTO hotlist.hotlists (name, display_name, description, source, priority, default_action,
                   default_instructions, active, strictness, min_match_score, suppression_seconds,
                   default_ttl_seconds, created_by, updated_by, revision)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, 1) RETURNING *""",
            name,
            *_field_values(fields),
            actor,
        )
    except asyncpg.UniqueViolationError:
        raise AlreadyExists(f"a hotlist named {name!r} already exists") from None
    assert row is not None
    return hotlist_of(row)


def _field_values(fields: HotlistFields) -> list[Any]:
    return [
        fields.display_name,
        fields.description,
        fields.source,
        fields.priority,
        fields.default_action,
        fields.default_instructions,
        fields.active,
        fields.strictness,
        fields.min_match_score,
        fields.suppression_seconds,
        fields.default_ttl_seconds,
    ]


async def get_hotlist(connection: Connection, name: str) -> Hotlist:
    """A list by name; NotFound when unknown."""
    row = await connection.fetchrow("SELECT * FROM hotlist.hotlists WHERE name = $1", name)
    if row is None:
        raise NotFound(f"no hotlist named {name!r}")
    return hotlist_of(row)


async def lock_for_change(connection: Connection, name: str, *, new_epoch: bool = False) -> Hotlist:
    """Bump the list's revision (and epoch for a full replace), locking its row until commit; NotFound if unknown."""
    row = await connection.fetchrow(
        """UPDATE hotlist.hotlists SET revision = revision + 1, epoch = epoch + $2::int
            WHERE name = $1 RETURNING *""",
        name,
        1 if new_epoch else 0,
    )
    if row is None:
        raise NotFound(f"no hotlist named {name!r}")
    return hotlist_of(row)


async def update_hotlist(connection: Connection, hotlist: Hotlist, fields: HotlistFields, actor: str) -> Hotlist:
    """Store new settings for a list locked with :func:`lock_for_change`."""
    row = await connection.fetchrow(
        """UPDATE hotlist.hotlists SET display_name = $2, description = $3, source = $4, priority = $5,
               default_action = $6, default_instructions = $7, active = $8, strictness = $9, min_match_score = $10,
               suppression_seconds = $11, default_ttl_seconds = $12, updated_by = $13, update_time = now()
            WHERE hotlist_id = $1 RETURNING *""",
        hotlist.hotlist_id,
        *_field_values(fields),
        actor,
    )
    assert row is not None
    return hotlist_of(row)


async def delete_hotlist(connection: Connection, hotlist: Hotlist) -> None:
    """Delete a locked list; its entries go with it (ON DELETE CASCADE)."""
    await connection.execute("DELETE FROM hotlist.hotlists WHERE hotlist_id = $1", hotlist.hotlist_id)


async def list_hotlists(connection: Connection, after: str | None, include_inactive: bool, limit: int) -> list[Hotlist]:
    """Lists ordered by name, after a name (keyset paging)."""
    rows = await connection.fetch(
        """SELECT * FROM hotlist.hotlists
            WHERE ($1::text IS NULL OR name > $1) AND ($2 OR active)
            ORDER BY name LIMIT $3""",
        after,
        include_inactive,
        limit,
    )
    return [hotlist_of(row) for row in rows]


def effective_expiry(fields: EntryFields, hotlist: Hotlist, now: datetime) -> datetime | None:
    """The entry's expiry, or the list's default TTL from now, or None."""
    if fields.expire_time is not None:
        return fields.expire_time
    ttl = hotlist.fields.default_ttl_seconds
    return now + timedelta(seconds=ttl) if ttl else None


async def upsert_entries(
    connection: Connection, hotlist: Hotlist, entries: Sequence[EntryFields], actor: str
) -> list[tuple[Entry, bool]]:
    """Insert or update entries of a locked list by target; returns each stored entry and whether it was new."""
    targets = [entry.target for entry in entries]
    if len(set(targets)) != len(targets):
        raise InvalidArgument("the same plate or pattern appears twice in the request")
    now = datetime.now(UTC)
    rows = await connection.fetch(
        f"""WITH given AS (
                SELECT * FROM unnest($2::text[], $3::bool[], $4::text[], $5::text[], $6::text[], $7::text[],
                                     $8::text[], $9::text[], $10::int[], $11::text[], $12::timestamptz[])
                    WITH ORDINALITY AS g(target, is_pattern, reason, make, model, colour, notes,
                                         external_reference, action, instructions, expire_time, ordinal)),
            stored AS (
                INSERT INTO hotlist.entries AS e (hotlist_id, target, is_pattern, reason, make, model, colour, notes,
                    external_reference, action, instructions, expire_time, added_by, updated_by, revision)
                SELECT $1, target, is_pattern, reason, make, model, colour, notes, external_reference, action,
                       instructions, expire_time, $13, $13, $14
                  FROM given ORDER BY ordinal
                ON CONFLICT (hotlist_id, target) DO UPDATE SET reason = EXCLUDED.reason, make = EXCLUDED.make,
                    model = EXCLUDED.model, colour = EXCLUDED.colour, notes = EXCLUDED.notes,
                    external_reference = EXCLUDED.external_reference, action = EXCLUDED.action,
                    instructions = EXCLUDED.instructions, expire_time = EXCLUDED.expire_time,
                    updated_by = EXCLUDED.updated_by, update_time = now(), revision = EXCLUDED.revision
                RETURNING e.*, (xmax = 0) AS created)
            SELECT {_ENTRY_COLUMNS.replace("h.name", "$15::text")}, e.created
              FROM stored e JOIN given g ON g.target = e.target ORDER BY g.ordinal""",  # noqa: S608 - constant fragments; every value is a parameter
        hotlist.hotlist_id,
        targets,
        [entry.is_pattern for entry in entries],
        [entry.reason for entry in entries],
        [entry.make for entry in entries],
        [entry.model for entry in entries],
        [entry.colour for entry in entries],
        [entry.notes for entry in entries],
        [entry.external_reference for entry in entries],
        [entry.action for entry in entries],
        [entry.instructions for entry in entries],
        [effective_expiry(entry, hotlist, now) for entry in entries],
        actor,
        hotlist.revision,
        hotlist.name,
    )
    created = sum(1 for row in rows if row["created"])
    await adjust_count(connection, hotlist, created)
    return [(entry_of(row), row["created"]) for row in rows]


async def adjust_count(connection: Connection, hotlist: Hotlist, delta: int) -> None:
    """Keep ``entry_count`` current without counting a million rows."""
    if delta:
        await connection.execute(
            "UPDATE hotlist.hotlists SET entry_count = entry_count + $2 WHERE hotlist_id = $1",
            hotlist.hotlist_id,
            delta,
        )


async def delete_entries(
    connection: Connection, hotlist: Hotlist, entry_ids: Sequence[int], targets: Sequence[str]
) -> int:
    """Delete entries of a locked list by id or target, leaving tombstones for replicas; returns the count."""
    deleted: int = await connection.fetchval(
        """WITH gone AS (
                DELETE FROM hotlist.entries
                 WHERE hotlist_id = $1 AND (entry_id = ANY($2::bigint[]) OR target = ANY($3::text[]))
                RETURNING entry_id),
            marked AS (
                INSERT INTO hotlist.entry_tombstones (hotlist_id, entry_id, revision)
                SELECT $1, entry_id, $4 FROM gone RETURNING 1)
            SELECT count(*) FROM marked""",
        hotlist.hotlist_id,
        list(entry_ids),
        list(targets),
        hotlist.revision,
    )
    await adjust_count(connection, hotlist, -deleted)
    return deleted


async def list_entries(
    connection: Connection, hotlist: Hotlist, after: str | None, prefix: str, include_expired: bool, limit: int
) -> list[Entry]:
    """Entries ordered by target, after a target (keyset paging)."""
    rows = await connection.fetch(
        f"""SELECT {_ENTRY_COLUMNS} FROM hotlist.entries e JOIN hotlist.hotlists h USING (hotlist_id)
             WHERE e.hotlist_id = $1 AND ($2::text IS NULL OR e.target > $2)
               AND starts_with(e.target, $3)
               AND ($4 OR e.expire_time IS NULL OR e.expire_time > now())
             ORDER BY e.target LIMIT $5""",  # noqa: S608 - constant fragments; every value is a parameter
        hotlist.hotlist_id,
        after,
        prefix,
        include_expired,
        limit,
    )
    return [entry_of(row) for row in rows]


async def entries_by_id(connection: Connection, entry_ids: Sequence[int]) -> dict[int, Entry]:
    """Entries by id (for the details of hits); ids no longer stored are absent."""
    rows = await connection.fetch(
        f"""SELECT {_ENTRY_COLUMNS} FROM hotlist.entries e JOIN hotlist.hotlists h USING (hotlist_id)
             WHERE e.entry_id = ANY($1::bigint[])""",  # noqa: S608 - constant fragments; every value is a parameter
        list(entry_ids),
    )
    return {row["entry_id"]: entry_of(row) for row in rows}
