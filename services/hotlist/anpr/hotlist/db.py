"""Database plumbing shared by the hotlist core modules: connection type, schema and notification channels.

Every statement names its tables with the ``hotlist.`` schema (the pool is shared code and sets no search path)
and passes every value as a parameter; no request text is ever put into SQL.
"""

from __future__ import annotations

from anpr.runtime.database import Connection, Pool

__all__ = ["ALERTS_CHANNEL", "LISTS_CHANNEL", "SCHEMA", "Connection", "Pool", "notify_list_changed"]

SCHEMA = "hotlist"
LISTS_CHANNEL = "anpr_hotlist_lists"
"""NOTIFY channel: payload is the id of a hotlist whose settings or entries changed (or that was deleted)."""
ALERTS_CHANNEL = "anpr_hotlist_alerts"
"""NOTIFY channel: payload is the last alert-stream position a transaction committed."""


async def notify_list_changed(connection: Connection, hotlist_id: int) -> None:
    """Queue a notification for the list; PostgreSQL delivers it only if and when the transaction commits."""
    await connection.execute("SELECT pg_notify($1, $2)", LISTS_CHANNEL, str(hotlist_id))
