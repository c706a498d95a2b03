"""Database plumbing shared by the hotlist core modules: connection type, schema and notification channels.

Every statement names its tables with the ``hotlist.`` schema (the pool is shared code and sets no search path)
and passes every value as a parameter; no request text is ever put into SQL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:  # asyncpg's classes are generic only in its stubs
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

    Connection: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]
    Pool: TypeAlias = asyncpg.Pool[Any]
else:
    Connection = Any
    Pool = Any

SCHEMA = "hotlist"
LISTS_CHANNEL = "anpr_hotlist_lists"
"""NOTIFY channel: payload is the id of a hotlist whose settings or entries changed (or that was deleted)."""
ALERTS_CHANNEL = "anpr_hotlist_alerts"
"""NOTIFY channel: payload is the last alert-stream position a transaction committed."""


async def notify_list_changed(connection: Connection, hotlist_id: int) -> None:
    """Queue a notification for the list; PostgreSQL delivers it only if and when the transaction commits."""
    await connection.execute("SELECT pg_notify($1, $2)", LISTS_CHANNEL, str(hotlist_id))
