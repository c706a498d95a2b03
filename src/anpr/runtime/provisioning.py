"""A service's database at start-up: migrated by the schema's owner, served by a least-privilege role.

Three cases, from the service's :class:`DatabaseSettings`:

- ``database_url`` and ``migration_database_url``: the owner's URL migrates and grants (see :mod:`anpr.runtime.roles`),
  the pool uses ``database_url``.
- ``database_url`` alone: that role migrates and serves, as before; a warning says it owns its schema.
- neither: an embedded PostgreSQL whose superuser creates the owner and runtime roles; the service then proceeds as
  in the first case with those roles.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from typing import Any

import asyncpg

from anpr.runtime.database import Pool, connect_pool, embedded_postgres
from anpr.runtime.errors import Unavailable
from anpr.runtime.migrations import apply_migrations, discover, migrate
from anpr.runtime.roles import (
    EMBEDDED_OWNER_ROLE,
    EMBEDDED_RUNTIME_ROLE,
    check_separation,
    ensure_embedded_roles,
    grant_runtime_privileges,
    with_user,
)
from anpr.runtime.settings import DatabaseSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatabaseUrls:
    """Where a service connects: its runtime role, and the schema owner's role for migrations (None: the same)."""

    runtime: str
    migration: str | None


async def prepare_embedded(superuser_url: str, schemas: tuple[str, ...]) -> DatabaseUrls:
    """Create the embedded server's owner and runtime roles (idempotently); the URLs to use instead of the superuser."""
    connection = await _connect(superuser_url, "the embedded superuser")
    try:
        await ensure_embedded_roles(connection, schemas)
    finally:
        await connection.close()
    return DatabaseUrls(with_user(superuser_url, EMBEDDED_RUNTIME_ROLE), with_user(superuser_url, EMBEDDED_OWNER_ROLE))


async def migrate_as_owner(owner_url: str, runtime_role: str, schema: str, directory: Traversable) -> list[int]:
    """Apply the migrations over the owner's URL, then (re)grant the runtime role its privileges."""
    migrations = discover(directory)
    connection = await _connect(owner_url, "the schema owner (migration_database_url)")
    try:
        await check_separation(connection, schema, runtime_role)
        applied = await apply_migrations(connection, schema, migrations)
        await grant_runtime_privileges(connection, schema, runtime_role)
    finally:
        await connection.close()
    return applied


@asynccontextmanager
async def open_service_database(settings: DatabaseSettings, schema: str, directory: Traversable) -> AsyncIterator[Pool]:
    """The service's pool (its runtime role), once its schema is migrated; closed (and an embedded server stopped)
    on exit."""
    if settings.database_url is None:
        async with embedded_postgres(settings.embedded_database_dir) as superuser_url:
            urls = await prepare_embedded(superuser_url, (schema,))
            async with _migrated_pool(urls, settings, schema, directory) as pool:
                yield pool
        return
    migration = settings.migration_database_url
    urls = DatabaseUrls(
        settings.database_url.get_secret_value(), None if migration is None else migration.get_secret_value()
    )
    async with _migrated_pool(urls, settings, schema, directory) as pool:
        yield pool


@asynccontextmanager
async def _migrated_pool(
    urls: DatabaseUrls, settings: DatabaseSettings, schema: str, directory: Traversable
) -> AsyncIterator[Pool]:
    async with connect_pool(urls.runtime, settings) as pool:
        if urls.migration is None:
            log.warning(
                "database_url's role migrates and owns schema %s, so it could disable the audit log's triggers; "
                "set migration_database_url to the owner's URL and give database_url a least-privilege role",
                schema,
            )
            await migrate(pool, schema, directory)
        else:
            runtime_role = str(await pool.fetchval("SELECT current_user"))
            await migrate_as_owner(urls.migration, runtime_role, schema, directory)
        yield pool


async def _connect(url: str, role: str) -> asyncpg.Connection[Any]:
    try:
        return await asyncpg.connect(url)
    except (OSError, asyncpg.PostgresError) as exc:
        raise Unavailable(f"cannot connect to PostgreSQL as {role}: {exc}") from exc
