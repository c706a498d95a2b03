"""A SQLite file in WAL mode used from asyncio: every call runs on one dedicated thread.

SQLite calls block, and a ``sqlite3`` connection is not safe to share between threads; one single-threaded
executor per file keeps the event loop free and serialises the calls. Used by ingest's event spool and by the
edge agent's frame buffer.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, TypeVar

T = TypeVar("T")


class SqliteFile:
    """Open with :meth:`open`, run functions of the connection with :meth:`run`, close with :meth:`close`."""

    def __init__(self, path: Path, *, name: str, synchronous: Literal["NORMAL", "FULL"]) -> None:
        self.path = path
        self._name = name
        self._synchronous = synchronous
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._connection: sqlite3.Connection | None = None

    async def run(self, function: Callable[[sqlite3.Connection], T]) -> T:
        """Call ``function(connection)`` on the file's thread."""

        def call() -> T:
            if self._connection is None:
                raise RuntimeError(f"{self._name} is closed")
            return function(self._connection)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def open(self, schema: str) -> None:
        """Create or open the file and apply ``schema`` (idempotent DDL)."""

        def connect() -> sqlite3.Connection:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={self._synchronous}")
            connection.execute("PRAGMA busy_timeout=5000")
            connection.executescript(schema)
            return connection

        self._connection = await asyncio.get_running_loop().run_in_executor(self._executor, connect)

    async def close(self) -> None:
        """Close the file and its thread; safe to call twice."""

        def close() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)
