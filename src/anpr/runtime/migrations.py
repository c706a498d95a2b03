"""Versioned SQL migrations, applied at start-up, idempotently, under an advisory lock.

Each service owns one PostgreSQL schema and a directory of files named ``NNNN_description.sql``. Applied versions
are recorded with a checksum in ``<schema>.schema_migrations``; a changed file that was already applied is an
error (write a new migration instead). Several replicas may start at once: the advisory lock lets one apply and
the others wait and find nothing left to do.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib.resources.abc import Traversable

from anpr.runtime.database import Connection, Pool
from anpr.runtime.errors import ConfigurationError

log = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Migration:
    """One SQL file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the SQL text."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Traversable) -> list[Migration]:
    """The migrations in a directory (a path or a package resource), in version order."""
    found: list[Migration] = []
    for entry in directory.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if match is None:
            raise ConfigurationError(f"migration file {entry.name!r} is not named NNNN_description.sql")
        found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if len(set(versions)) != len(versions):
        raise ConfigurationError("two migration files share a version number")
    return found


def _lock_key(schema: str) -> int:
    # A stable signed 64-bit key per schema, so services migrating different schemas do not wait for each other.
    return int.from_bytes(hashlib.sha256(f"anpr-migrations:{schema}".encode()).digest()[:8], "big", signed=True)


async def apply_migrations(connection: Connection, schema: str, migrations: list[Migration]) -> list[int]:
    """Apply what is missing; return the versions applied now (empty when up to date)."""
    if not _SCHEMA_NAME.match(schema):
        raise ConfigurationError(f"invalid schema name {schema!r}")
    # The schema name is interpolated into SQL (identifiers cannot be parameters); it was checked against
    # _SCHEMA_NAME above and comes from code, never from a request.
    applied_now: list[int] = []
    await connection.execute("SELECT pg_advisory_lock($1)", _lock_key(schema))
    try:
        await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await connection.execute(
            f"""CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        rows = await connection.fetch(f"SELECT version, checksum FROM {schema}.schema_migrations")  # noqa: S608
        done = {row["version"]: row["checksum"] for row in rows}
        for migration in migrations:
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise ConfigurationError(
                        f"migration {schema}/{migration.version:04d}_{migration.name} changed after it was applied;"
                        " add a new migration instead of editing an applied one"
                    )
                continue
            async with connection.transaction():
                await connection.execute(f"SET LOCAL search_path TO {schema}, public")
                await connection.execute(migration.sql)
                await connection.execute(
                    f"INSERT INTO {schema}.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",  # noqa: S608
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            applied_now.append(migration.version)
            log.info("applied migration", extra={"schema": schema, "version": migration.version})
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", _lock_key(schema))
    return applied_now


async def migrate(pool: Pool, schema: str, directory: Traversable) -> list[int]:
    """Apply a service's migrations using one connection of its pool."""
    migrations = discover(directory)
    async with pool.acquire() as connection:
        return await apply_migrations(connection, schema, migrations)
