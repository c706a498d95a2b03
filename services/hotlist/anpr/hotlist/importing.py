"""Bulk import of entries: validate row by row, spool, stage with COPY, merge in one statement, swap atomically.

The client stream is read and validated first, without a database connection: valid rows go to a private
temporary file in chunks (so a million rows never sit in memory at once, and a slow or idle importer holds no
pool connection and no open transaction while it sends; issue 19 measured 12 idle imports making every other RPC
miss its deadline). Only when the stream has ended is a connection taken, for one transaction: the spooled rows
are copied into a temporary staging table with COPY, one ``INSERT .. ON CONFLICT`` merges them (rows identical to
the stored entry are left alone) and, in REPLACE mode, one anti-join deletes what the import does not contain.
Until the commit every reader sees the old list, afterwards the new one; a failed or cancelled stream changes
nothing. REPLACE bumps the list's epoch so that replicas reload it whole rather than follow a million tombstones.
Imports running at once are bounded; one more is refused with RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import asyncio
import pickle  # only this process's own records, in a private unlinked temporary file
import struct
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from anpr.hotlist import audit, metrics, repository
from anpr.hotlist.db import Connection, Pool, notify_list_changed
from anpr.hotlist.model import LONG_TEXT, SHORT_TEXT, EntryFields, Hotlist, check_name, entry_target
from anpr.hotlist.patterns import InvalidPattern
from anpr.hotlist.plates import InvalidPlate
from anpr.hotlist.sync import IndexSync
from anpr.runtime.errors import InvalidArgument, ResourceExhausted

_COLUMNS = (
    "target",
    "is_pattern",
    "reason",
    "make",
    "model",
    "colour",
    "notes",
    "external_reference",
    "action",
    "instructions",
    "expire_time",
)
_LIMITS = {
    "reason": LONG_TEXT,
    "make": SHORT_TEXT,
    "model": SHORT_TEXT,
    "colour": SHORT_TEXT,
    "notes": LONG_TEXT,
    "external_reference": SHORT_TEXT,
    "instructions": LONG_TEXT,
}


class _Refused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class ImportHeader:
    """What the first message of an import says."""

    hotlist_name: str
    replace: bool = False
    dry_run: bool = False
    origin: str = ""


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One row as sent: plate or pattern not yet validated."""

    row_number: int
    plate: str
    pattern: str
    fields: EntryFields


@dataclass(frozen=True)
class RowError:
    """A refused row; ``reason`` is the name of ``ImportErrorReason`` without its prefix."""

    row_number: int
    value: str
    reason: str
    message: str


@dataclass
class ImportResult:
    """Counts and refused rows of an import."""

    received: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    errors_truncated: bool = False
    applied: bool = False


_Record = tuple[Any, ...]
_LENGTH = struct.Struct(">Q")
SPOOL_CHUNK_ROWS = 10_000


class _Spool:
    """Validated staging records in an unlinked temporary file, written and read back in chunks off the loop."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="anpr-import-")  # noqa: SIM115 - closed by close()
        self._buffer: list[_Record] = []

    async def add(self, records: list[_Record]) -> None:
        self._buffer.extend(records)
        if len(self._buffer) >= SPOOL_CHUNK_ROWS:
            await self.flush()

    async def flush(self) -> None:
        if self._buffer:
            chunk, self._buffer = self._buffer, []
            await asyncio.to_thread(self._write, pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL))

    def _write(self, data: bytes) -> None:
        self._file.write(_LENGTH.pack(len(data)))
        self._file.write(data)

    async def chunks(self) -> AsyncIterator[list[_Record]]:
        await self.flush()
        await asyncio.to_thread(self._file.seek, 0)
        while chunk := await asyncio.to_thread(self._read):
            yield chunk

    def _read(self) -> list[_Record]:
        head = self._file.read(_LENGTH.size)
        if not head:
            return []
        records: list[_Record] = pickle.loads(self._file.read(_LENGTH.unpack(head)[0]))  # noqa: S301 - see import
        return records

    def close(self) -> None:
        self._file.close()


class Importer:
    """Runs ImportEntries streams, at most ``max_concurrent`` at once."""

    def __init__(self, pool: Pool, sync: IndexSync, max_rows: int, max_errors: int, max_concurrent: int = 2) -> None:
        self._pool = pool
        self._sync = sync
        self._max_rows = max_rows
        self._max_errors = max_errors
        self._max_concurrent = max_concurrent
        self._running = 0

    async def run(self, header: ImportHeader, batches: AsyncIterator[list[ImportRow]]) -> ImportResult:
        """Consume the row batches and apply them (unless a dry run); NotFound for an unknown list,
        ResourceExhausted when ``max_concurrent`` imports are already running."""
        check_name(header.hotlist_name)
        if self._running >= self._max_concurrent:
            metrics.IMPORTS_REFUSED.inc()
            raise ResourceExhausted(
                f"{self._running} imports are running (the limit is {self._max_concurrent}); retry when one has ended"
            )
        self._running += 1
        spool = _Spool()
        try:
            return await self._run(header, batches, spool)
        finally:
            self._running -= 1
            await asyncio.to_thread(spool.close)

    async def _run(self, header: ImportHeader, batches: AsyncIterator[list[ImportRow]], spool: _Spool) -> ImportResult:
        result = ImportResult()
        seen: set[str] = set()
        async with self._pool.acquire() as connection:  # a moment, for the list's defaults
            hotlist = await repository.get_hotlist(connection, header.hotlist_name)
        now = datetime.now(UTC)
        async for batch in batches:
            result.received += len(batch)
            if result.received > self._max_rows:
                raise InvalidArgument(f"an import may have at most {self._max_rows} rows")
            await spool.add([r for row in batch if (r := self._validate(row, hotlist, now, seen, result)) is not None])
        seen.clear()
        valid = result.received - result.rejected
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                """CREATE TEMP TABLE import_staging (target text, is_pattern boolean, reason text, make text,
                       model text, colour text, notes text, external_reference text, action integer,
                       instructions text, expire_time timestamptz) ON COMMIT DROP"""
            )
            async for records in spool.chunks():
                await connection.copy_records_to_table("import_staging", records=records, columns=_COLUMNS)
            await connection.execute("ANALYZE import_staging")
            if header.dry_run:
                await self._count_only(connection, hotlist.hotlist_id, valid, header.replace, result)
            else:
                await self._merge(connection, header, valid, result)
        metrics.IMPORT_ROWS.labels("accepted").inc(valid)
        metrics.IMPORT_ROWS.labels("rejected").inc(result.rejected)
        if result.applied:
            await self._sync.refresh(hotlist.hotlist_id)
        return result

    def _validate(
        self, row: ImportRow, hotlist: Hotlist, now: datetime, seen: set[str], result: ImportResult
    ) -> _Record | None:
        """The staging record of a valid row; a refused row is counted and listed instead."""
        try:
            target, pattern = self._check(row, now, seen)
        except _Refused as refused:
            self._refuse(result, row, refused.reason, refused.message)
            return None
        seen.add(target)
        fields = row.fields
        return (
            target,
            pattern,
            fields.reason,
            fields.make,
            fields.model,
            fields.colour,
            fields.notes,
            fields.external_reference,
            fields.action,
            fields.instructions,
            repository.effective_expiry(fields, hotlist, now),
        )

    @staticmethod
    def _check(row: ImportRow, now: datetime, seen: set[str]) -> tuple[str, bool]:
        if not row.plate and not row.pattern:
            raise _Refused("MISSING_TARGET", "neither plate nor pattern given")
        try:
            target, pattern = entry_target(row.plate, row.pattern)
        except InvalidPlate as exc:
            raise _Refused("INVALID_PLATE", exc.message) from None
        except InvalidPattern as exc:
            raise _Refused("INVALID_PATTERN", exc.message) from None
        except InvalidArgument as exc:
            raise _Refused("UNSPECIFIED", exc.message) from None
        fields = row.fields
        for name, limit in _LIMITS.items():
            value: str = getattr(fields, name)
            if len(value) > limit or "\x00" in value:
                raise _Refused("FIELD_TOO_LONG", f"{name} is too long or holds NUL characters")
        if not 0 <= fields.action <= 4:
            raise _Refused("UNSPECIFIED", "action is not a known action")
        if fields.expire_time is not None and fields.expire_time <= now:
            raise _Refused("ALREADY_EXPIRED", "expire_time lies in the past")
        if target in seen:
            raise _Refused("DUPLICATE_ROW", "the same plate or pattern appeared earlier")
        return target, pattern

    def _refuse(self, result: ImportResult, row: ImportRow, reason: str, message: str) -> None:
        result.rejected += 1
        if len(result.errors) < self._max_errors:
            # The value is echoed to the importer, who sent it; it is never logged.
            result.errors.append(RowError(row.row_number, (row.plate or row.pattern)[:64], reason, message))
        else:
            result.errors_truncated = True

    async def _count_only(
        self, connection: Connection, hotlist_id: int, valid: int, replace: bool, result: ImportResult
    ) -> None:
        row = await connection.fetchrow(
            f"""SELECT count(*) FILTER (WHERE e.entry_id IS NULL) AS created,
                       count(*) FILTER (WHERE e.entry_id IS NOT NULL
                           AND ({_DIFFERS.format(new="s")})) AS updated
                  FROM import_staging s
                  LEFT JOIN hotlist.entries e ON e.hotlist_id = $1 AND e.target = s.target""",  # noqa: S608 - constant fragments; every value is a parameter
            hotlist_id,
        )
        assert row is not None
        result.created, result.updated = row["created"], row["updated"]
        result.unchanged = valid - result.created - result.updated
        if replace:
            result.deleted = await connection.fetchval(
                """SELECT count(*) FROM hotlist.entries e WHERE e.hotlist_id = $1
                      AND NOT EXISTS (SELECT 1 FROM import_staging s WHERE s.target = e.target)""",
                hotlist_id,
            )

    async def _merge(self, connection: Connection, header: ImportHeader, valid: int, result: ImportResult) -> None:
        identity, _ = audit.actor()
        hotlist = await repository.lock_for_change(connection, header.hotlist_name, new_epoch=header.replace)
        row = await connection.fetchrow(
            f"""WITH merged AS (
                    INSERT INTO hotlist.entries AS e (hotlist_id, target, is_pattern, reason, make, model, colour,
                        notes, external_reference, action, instructions, expire_time, added_by, updated_by, revision)
                    SELECT $1, target, is_pattern, reason, make, model, colour, notes, external_reference, action,
                           instructions, expire_time, $2, $2, $3
                      FROM import_staging
                    ON CONFLICT (hotlist_id, target) DO UPDATE SET reason = EXCLUDED.reason, make = EXCLUDED.make,
                        model = EXCLUDED.model, colour = EXCLUDED.colour, notes = EXCLUDED.notes,
                        external_reference = EXCLUDED.external_reference, action = EXCLUDED.action,
                        instructions = EXCLUDED.instructions, expire_time = EXCLUDED.expire_time,
                        updated_by = EXCLUDED.updated_by, update_time = now(), revision = EXCLUDED.revision
                    WHERE {_DIFFERS.format(new="EXCLUDED")}
                    RETURNING (xmax = 0) AS created)
                SELECT count(*) FILTER (WHERE created) AS created, count(*) FILTER (WHERE NOT created) AS updated
                  FROM merged""",  # noqa: S608 - constant fragments; every value is a parameter
            hotlist.hotlist_id,
            identity,
            hotlist.revision,
        )
        assert row is not None
        result.created, result.updated = row["created"], row["updated"]
        result.unchanged = valid - result.created - result.updated
        if header.replace:
            result.deleted = int(
                await connection.fetchval(
                    """WITH gone AS (DELETE FROM hotlist.entries e WHERE e.hotlist_id = $1
                           AND NOT EXISTS (SELECT 1 FROM import_staging s WHERE s.target = e.target)
                           RETURNING 1)
                       SELECT count(*) FROM gone""",
                    hotlist.hotlist_id,
                )
            )
        await repository.adjust_count(connection, hotlist, result.created - result.deleted)
        await audit.record(
            connection,
            "ENTRIES_IMPORTED",
            target_type="hotlist",
            target_id=header.hotlist_name,
            details={
                "mode": "replace" if header.replace else "upsert",
                "origin": header.origin[:200],
                "received": result.received,
                "created": result.created,
                "updated": result.updated,
                "unchanged": result.unchanged,
                "deleted": result.deleted,
                "rejected": result.rejected,
            },
        )
        await notify_list_changed(connection, hotlist.hotlist_id)
        result.applied = True


# Whether a staged row differs from the stored entry `e` ({new} is the staged row's alias).
_DIFFERS = """(e.reason, e.make, e.model, e.colour, e.notes, e.external_reference, e.action, e.instructions,
    e.expire_time) IS DISTINCT FROM ({new}.reason, {new}.make, {new}.model, {new}.colour, {new}.notes,
    {new}.external_reference, {new}.action, {new}.instructions, {new}.expire_time)"""
