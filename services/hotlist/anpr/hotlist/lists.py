"""Hotlists and their entries: create, change, delete, page through; every change audited and propagated.

Each change runs in one transaction that locks the list (bumping its revision), writes, appends the audit row and
queues the change notification; after commit this replica refreshes its own index before answering.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from anpr.hotlist import audit, repository
from anpr.hotlist.db import Pool, notify_list_changed
from anpr.hotlist.model import UPDATABLE, Entry, EntryFields, Hotlist, HotlistFields, check_entry, check_name
from anpr.hotlist.paging import decode_token, encode_token
from anpr.hotlist.sync import IndexSync
from anpr.runtime.errors import InvalidArgument


class HotlistCatalog:
    """The lists and entries of the service."""

    def __init__(self, pool: Pool, sync: IndexSync, max_upsert_batch: int) -> None:
        self._pool = pool
        self._sync = sync
        self._max_upsert_batch = max_upsert_batch

    async def create(self, name: str, fields: HotlistFields) -> Hotlist:
        """Create a list; AlreadyExists when the name is taken."""
        check_name(name)
        fields.validated()
        identity, _ = audit.actor()
        async with self._pool.acquire() as connection, connection.transaction():
            hotlist = await repository.insert_hotlist(connection, name, fields, identity)
            await audit.record(
                connection,
                "HOTLIST_CREATED",
                target_type="hotlist",
                target_id=name,
                details={"fields": _jsonable(dataclasses.asdict(fields))},
            )
            await notify_list_changed(connection, hotlist.hotlist_id)
        await self._sync.refresh(hotlist.hotlist_id)
        return hotlist

    async def get(self, name: str) -> Hotlist:
        """A list by name; NotFound when unknown."""
        async with self._pool.acquire() as connection:
            return await repository.get_hotlist(connection, check_name(name))

    async def update(self, name: str, changes: Mapping[str, Any]) -> Hotlist:
        """Change the named settings of a list."""
        check_name(name)
        if not changes:
            raise InvalidArgument("update_mask must name at least one field")
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise InvalidArgument(f"cannot update {sorted(unknown)}")
        identity, _ = audit.actor()
        async with self._pool.acquire() as connection, connection.transaction():
            current = await repository.lock_for_change(connection, name)
            fields = dataclasses.replace(current.fields, **changes).validated()
            hotlist = await repository.update_hotlist(connection, current, fields, identity)
            await audit.record(
                connection,
                "HOTLIST_UPDATED",
                target_type="hotlist",
                target_id=name,
                details={"changed": _jsonable(dict(changes))},
            )
            await notify_list_changed(connection, hotlist.hotlist_id)
        await self._sync.refresh(hotlist.hotlist_id)
        return hotlist

    async def delete(self, name: str) -> int:
        """Delete a list and its entries; returns how many entries went with it."""
        check_name(name)
        async with self._pool.acquire() as connection, connection.transaction():
            hotlist = await repository.lock_for_change(connection, name)
            await repository.delete_hotlist(connection, hotlist)
            await audit.record(
                connection,
                "HOTLIST_DELETED",
                target_type="hotlist",
                target_id=name,
                details={"entry_count": hotlist.entry_count},
            )
            await notify_list_changed(connection, hotlist.hotlist_id)
        await self._sync.refresh(hotlist.hotlist_id)
        return hotlist.entry_count

    async def page(self, token: str, size: int, include_inactive: bool) -> tuple[list[Hotlist], str]:
        """One page of lists by name, and the token of the next ('' at the end)."""
        filters = {"include_inactive": include_inactive}
        after = decode_token(token, filters)
        async with self._pool.acquire() as connection:
            found = await repository.list_hotlists(connection, after, include_inactive, size + 1)
        more = len(found) > size
        found = found[:size]
        return found, encode_token(found[-1].name, filters) if more else ""

    async def upsert_entries(self, name: str, entries: Sequence[EntryFields]) -> list[tuple[Entry, bool]]:
        """Add or change entries, all or nothing."""
        check_name(name)
        if not entries:
            raise InvalidArgument("entries must not be empty")
        if len(entries) > self._max_upsert_batch:
            raise InvalidArgument(f"at most {self._max_upsert_batch} entries per call; use ImportEntries for more")
        for entry in entries:
            check_entry(entry)
        identity, _ = audit.actor()
        async with self._pool.acquire() as connection, connection.transaction():
            hotlist = await repository.lock_for_change(connection, name)
            stored = await repository.upsert_entries(connection, hotlist, entries, identity)
            created = sum(1 for _, new in stored if new)
            await audit.record(
                connection,
                "ENTRIES_UPSERTED",
                target_type="hotlist",
                target_id=name,
                details={"created": created, "updated": len(stored) - created},
            )
            await notify_list_changed(connection, hotlist.hotlist_id)
        await self._sync.refresh(hotlist.hotlist_id)
        return stored

    async def delete_entries(self, name: str, entry_ids: Sequence[int], targets: Sequence[str]) -> int:
        """Delete entries by id or normalised target; returns how many were deleted."""
        check_name(name)
        if len(entry_ids) + len(targets) > self._max_upsert_batch:
            raise InvalidArgument(f"at most {self._max_upsert_batch} ids and targets per call")
        async with self._pool.acquire() as connection, connection.transaction():
            hotlist = await repository.lock_for_change(connection, name)
            deleted = await repository.delete_entries(connection, hotlist, entry_ids, targets)
            await audit.record(
                connection,
                "ENTRIES_DELETED",
                target_type="hotlist",
                target_id=name,
                details={"deleted": deleted},
            )
            await notify_list_changed(connection, hotlist.hotlist_id)
        await self._sync.refresh(hotlist.hotlist_id)
        return deleted

    async def page_entries(
        self, name: str, token: str, size: int, prefix: str, include_expired: bool
    ) -> tuple[list[Entry], str]:
        """One page of a list's entries by target, and the token of the next ('' at the end)."""
        check_name(name)
        filters = {"name": name, "prefix": prefix, "include_expired": include_expired}
        after = decode_token(token, filters)
        async with self._pool.acquire() as connection:
            hotlist = await repository.get_hotlist(connection, name)
            found = await repository.list_entries(connection, hotlist, after, prefix, include_expired, size + 1)
        more = len(found) > size
        found = found[:size]
        return found, encode_token(found[-1].fields.target, filters) if more else ""


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value if isinstance(value, str | int | float | bool | None) else str(value)
        for key, value in values.items()
    }
