"""Issue 19: the schema's owner migrates, the services serve as a role that cannot tamper with the audit trail.

Every test makes its own owner and runtime roles on the shared server (names unique per test) and drops them after.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path

import asyncpg
import pytest

from anpr.api.common.v1 import plate_event_pb2, plate_pb2, time_range_pb2
from anpr.api.hotlist.v1 import hotlist_service_pb2 as pb
from anpr.ingest.convert import timestamp
from anpr.ingest.event_store import EventStore
from anpr.runtime.audit_chain import first_broken_row
from anpr.runtime.database import Connection, open_pool
from anpr.runtime.errors import ConfigurationError
from anpr.runtime.migrations import discover, migrate
from anpr.runtime.provisioning import migrate_as_owner, open_service_database
from anpr.runtime.roles import EMBEDDED_OWNER_ROLE, EMBEDDED_RUNTIME_ROLE, owned_objects, with_user
from anpr.runtime.settings import DatabaseSettings, load_settings
from testkit.hotlist import add_plates, caller, channel_to, create_list, plate_event, ts
from testkit.ingest_env import unused_port
from testkit.services import StartService

PURPOSE = "Investigation of hijacking"


def search_gp111() -> pb.SearchReadsRequest:
    """A search with a purpose (so it is audited) for the plate the tests report, over the last day."""
    now = datetime.now(UTC)
    window = time_range_pb2.TimeRange(start_time=ts(now - timedelta(days=1)), end_time=ts(now + timedelta(minutes=1)))
    return pb.SearchReadsRequest(purpose=PURPOSE, plate_pattern="GP111", time_range=window)


def event(plate: str, last_seen: float) -> plate_event_pb2.PlateEvent:
    return plate_event_pb2.PlateEvent(
        event_id=str(uuid.uuid4()),
        revision=1,
        camera_id="cam-1",
        reading=plate_pb2.PlateReading(text=plate),
        first_seen_time=timestamp(last_seen - 1),
        last_seen_time=timestamp(last_seen),
    )


async def drop_roles(database_url: str, *names: str) -> None:
    """Drop roles made by a test: their objects and grants in this database first (DROP ROLE refuses otherwise)."""
    admin = await asyncpg.connect(database_url)
    try:
        for name in names:
            if await admin.fetchval("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", name):
                await admin.execute(f"DROP OWNED BY {name} CASCADE")
                await admin.execute(f"DROP ROLE {name}")
    finally:
        await admin.close()


@dataclass(frozen=True)
class Roles:
    """An owner and a runtime role (LOGIN, no superuser) on the test's database, and their URLs."""

    owner: str
    runtime: str
    owner_url: str
    runtime_url: str


@pytest.fixture
async def roles(database_url: str) -> AsyncIterator[Roles]:
    suffix = uuid.uuid4().hex[:10]
    owner, runtime = f"anpr_test_owner_{suffix}", f"anpr_test_app_{suffix}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f"CREATE ROLE {owner} LOGIN")
        await admin.execute(f"CREATE ROLE {runtime} LOGIN")
        database = await admin.fetchval("SELECT current_database()")
        await admin.execute(f'GRANT CREATE ON DATABASE "{database}" TO {owner}')
    finally:
        await admin.close()
    try:
        yield Roles(owner, runtime, with_user(database_url, owner), with_user(database_url, runtime))
    finally:
        await drop_roles(database_url, owner, runtime)


async def assert_cannot_tamper(connection: Connection, schema: str, runtime_role: str) -> None:
    """As the runtime role: the audit trail can be read and appended to, and nothing else."""
    assert await connection.fetchval("SELECT count(*) FROM " + schema + ".audit_log") > 0
    assert await first_broken_row(connection, schema) is None
    denied = [
        f"TRUNCATE {schema}.audit_log",
        f"ALTER TABLE {schema}.audit_log DISABLE TRIGGER ALL",
        f"ALTER TABLE {schema}.audit_log DISABLE TRIGGER audit_log_no_update",
        f"DROP TRIGGER audit_log_no_update ON {schema}.audit_log",
        f"DROP TRIGGER audit_log_chain ON {schema}.audit_log",
        f"UPDATE {schema}.audit_log SET purpose = 'rewritten'",
        f"DELETE FROM {schema}.audit_log",
        f"DROP TABLE {schema}.audit_log",
        f"ALTER TABLE {schema}.audit_log OWNER TO {runtime_role}",
        f"CREATE OR REPLACE FUNCTION {schema}.audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN RETURN NULL; END $$",
        f"CREATE TABLE {schema}.intruder (x int)",
        f"INSERT INTO {schema}.schema_migrations (version, name, checksum) VALUES (9999, 'x', 'x')",
    ]
    for statement in denied:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute(statement)
    role = await connection.fetchrow(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles WHERE rolname = current_user"
    )
    assert role is not None
    assert not any(role.values())
    assert await owned_objects(connection, schema, runtime_role) == []


async def assert_url_cannot_tamper(runtime_url: str, schema: str, runtime_role: str) -> None:
    """:func:`assert_cannot_tamper` over a connection of its own."""
    connection = await asyncpg.connect(runtime_url)
    try:
        await assert_cannot_tamper(connection, schema, runtime_role)
    finally:
        await connection.close()


async def test_hotlist_serves_as_a_role_that_cannot_tamper_with_the_audit_log(
    roles: Roles, start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service("hotlist", database_url=roles.runtime_url, migration_database_url=roles.owner_url)
    async with channel_to(server) as channel:
        admin, ingest = caller(channel, tokens["hotlist-admin"]), caller(channel, tokens["ingest-service"])
        investigator = caller(channel, tokens["investigator"])
        await create_list(admin, "stolen")
        await add_plates(admin, "stolen", "GP111")
        reply = await ingest.stub.ReportReads(
            pb.ReportReadsRequest(events=[plate_event("GP111", camera_id="cam-1")]), metadata=ingest.metadata
        )
        assert [len(result.alerts) for result in reply.results] == [1]
        found = await investigator.stub.SearchReads(search_gp111(), metadata=investigator.metadata)
        assert found.audit_id
        assert [r.event.reading.text for r in found.reads] == ["GP111"]
    await assert_url_cannot_tamper(roles.runtime_url, "hotlist", roles.runtime)
    # A second start (another replica, or the next release) applies nothing and grants the same again.
    await start_service("hotlist", database_url=roles.runtime_url, migration_database_url=roles.owner_url)
    await assert_url_cannot_tamper(roles.runtime_url, "hotlist", roles.runtime)


async def test_ingest_serves_as_a_role_that_cannot_tamper_with_the_audit_log(
    roles: Roles, start_service: StartService, tmp_path: Path
) -> None:
    nowhere = f"dns:///127.0.0.1:{unused_port()}"
    await start_service(
        "ingest",
        database_url=roles.runtime_url,
        migration_database_url=roles.owner_url,
        recognize_target=nowhere,
        hotlist_target=nowhere,
        spool_path=str(tmp_path / "spool.sqlite3"),
    )
    pool = await asyncpg.create_pool(roles.runtime_url, min_size=1, max_size=2)
    try:
        store = EventStore(pool)
        now = time.time()
        await store.save([event("CA222222", now)])
        found, _, _ = await store.list(10, "", [], None, "", [], False, "Delivery fault on camera N1-04", "")
        assert [r.event.reading.text for r in found] == ["CA222222"]
        assert await store.purge(7 * 86_400) == 0
    finally:
        await pool.close()
    await assert_url_cannot_tamper(roles.runtime_url, "ingest", roles.runtime)


async def test_grants_cover_tables_of_later_migrations(roles: Roles, tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "0001_first.sql").write_text("CREATE TABLE first (x int); CREATE TABLE audit_log (y int);")
    assert await migrate_as_owner(roles.owner_url, roles.runtime, "demo", directory) == [1]
    (directory / "0002_second.sql").write_text("CREATE TABLE second (x int GENERATED ALWAYS AS IDENTITY, y int);")
    assert await migrate_as_owner(roles.owner_url, roles.runtime, "demo", directory) == [2]
    assert await migrate_as_owner(roles.owner_url, roles.runtime, "demo", directory) == []
    connection = await asyncpg.connect(roles.runtime_url)
    try:
        for table in ("first", "second"):
            await connection.execute(f"INSERT INTO demo.{table} DEFAULT VALUES")
            await connection.execute(f"UPDATE demo.{table} SET y = 1" if table == "second" else "SELECT 1")
            await connection.execute(f"DELETE FROM demo.{table}")
        await connection.execute("INSERT INTO demo.audit_log (y) VALUES (1)")
        for statement in ("UPDATE demo.audit_log SET y = 2", "DELETE FROM demo.audit_log", "TRUNCATE demo.second"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute(statement)
    finally:
        await connection.close()


async def test_replicas_starting_together_migrate_and_grant_once(roles: Roles) -> None:
    directory = files("anpr.hotlist") / "migrations"
    results = await asyncio.gather(
        *(migrate_as_owner(roles.owner_url, roles.runtime, "hotlist", directory) for _ in range(4))
    )
    assert sorted(len(applied) for applied in results) == [0, 0, 0, len(list(discover(directory)))]


async def test_a_runtime_role_that_could_act_as_the_owner_is_refused(
    roles: Roles, database_url: str, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "0001_first.sql").write_text("CREATE TABLE first (x int);")
    with pytest.raises(ConfigurationError, match="separate owner role"):
        await migrate_as_owner(roles.owner_url, roles.owner, "demo", directory)
    superuser = await asyncpg.connect(database_url)
    try:
        superuser_role = str(await superuser.fetchval("SELECT current_user"))
        with pytest.raises(ConfigurationError, match="superuser"):
            await migrate_as_owner(roles.owner_url, superuser_role, "demo", directory)
        # A deployment that ran as one role until now: its runtime role still owns the schema.
        await superuser.execute(f"CREATE SCHEMA legacy AUTHORIZATION {roles.runtime}")
    finally:
        await superuser.close()
    with pytest.raises(ConfigurationError, match="REASSIGN OWNED BY"):
        await migrate_as_owner(roles.owner_url, roles.runtime, "legacy", directory)


def test_the_owner_url_needs_a_runtime_url() -> None:
    with pytest.raises(ConfigurationError, match="migration_database_url needs database_url"):
        load_settings(DatabaseSettings, environ={}, migration_database_url="postgresql://owner@db.invalid/anpr")


async def test_the_embedded_database_serves_as_a_role_without_superuser(tmp_path: Path) -> None:
    """A data directory from before the roles (the superuser migrated, so it owns the schema) is taken over."""
    settings = load_settings(DatabaseSettings, environ={}, embedded_database_dir=str(tmp_path / "postgres"))
    migrations = files("anpr.hotlist") / "migrations"
    async with open_pool(settings) as pool:  # how services opened the embedded database until now
        await migrate(pool, "hotlist", migrations)
        assert await pool.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    for _ in range(2):  # the second start finds the roles and the schema's owner as it left them
        async with open_service_database(settings, "hotlist", migrations) as pool, pool.acquire() as connection:
            assert await connection.fetchval("SELECT current_user") == EMBEDDED_RUNTIME_ROLE
            await connection.execute("INSERT INTO hotlist.audit_log (actor, action) VALUES ('t', 'AUDIT_LOG_READ')")
            await assert_cannot_tamper(connection, "hotlist", EMBEDDED_RUNTIME_ROLE)
            assert await owned_objects(connection, "hotlist", EMBEDDED_OWNER_ROLE) != []
