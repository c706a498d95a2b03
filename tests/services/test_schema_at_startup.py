"""Database services create their schema at start-up, and a restart (or a second replica) changes nothing."""

from __future__ import annotations

import asyncpg
import pytest

from anpr.runtime.server import ServiceServer
from testkit.services import StartService


@pytest.mark.parametrize(("name", "table"), [("hotlist", "audit_log"), ("ingest", "cameras")])
async def test_start_twice_on_one_database(
    name: str, table: str, start_service: StartService, database_url: str
) -> None:
    first: ServiceServer = await start_service(name, database_url=database_url)
    second: ServiceServer = await start_service(name, database_url=database_url)
    assert first.port != second.port
    connection = await asyncpg.connect(database_url)
    try:
        assert await connection.fetchval(f"SELECT to_regclass('{name}.{table}') IS NOT NULL")
        versions = await connection.fetch(f"SELECT version FROM {name}.schema_migrations ORDER BY version")
        assert [row["version"] for row in versions] == list(range(1, len(versions) + 1))
    finally:
        await connection.close()


async def test_audit_log_is_append_only(start_service: StartService, database_url: str) -> None:
    await start_service("hotlist", database_url=database_url)
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("INSERT INTO hotlist.audit_log (actor, action) VALUES ('t', 'AUDIT_LOG_READ')")
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await connection.execute("DELETE FROM hotlist.audit_log")
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await connection.execute("UPDATE hotlist.audit_log SET actor = 'someone else'")
    finally:
        await connection.close()
