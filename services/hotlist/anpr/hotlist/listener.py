"""One LISTEN connection per replica, shared by the index sync and the alert hub, re-established when lost.

asyncpg calls listeners synchronously on the event loop; callbacks here only record that something changed and
wake a worker, so a slow database round trip never runs inside a notification callback. After a reconnect the
``on_reconnect`` callbacks run, because notifications sent while the connection was down are lost for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from anpr.hotlist.db import Pool

log = logging.getLogger(__name__)

Callback = Callable[[str], None]


class Listener:
    """Holds a pool connection that LISTENs on the given channels until :meth:`close`."""

    def __init__(self, pool: Pool, channels: dict[str, Callback], on_reconnect: list[Callable[[], None]]) -> None:
        self._pool = pool
        self._channels = channels
        self._adapters = {channel: _adapter(callback) for channel, callback in channels.items()}
        self._on_reconnect = on_reconnect
        self._connection: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect and listen; the watchdog task reconnects when the connection drops."""
        await self._connect()
        self._task = asyncio.create_task(self._watch(), name="hotlist-listener")

    async def _connect(self) -> None:
        connection = await self._pool.acquire()
        try:
            for channel, adapter in self._adapters.items():
                await connection.add_listener(channel, adapter)
        except BaseException:
            await self._pool.release(connection)
            raise
        self._connection = connection

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            connection = self._connection
            if self._alive():
                continue
            try:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await self._pool.release(connection)
                self._connection = None
                await self._connect()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("LISTEN connection lost, retrying: %s", exc)
                continue
            log.info("LISTEN connection re-established")
            for callback in self._on_reconnect:
                callback()

    def _alive(self) -> bool:
        try:
            return self._connection is not None and not self._connection.is_closed()
        except asyncpg.InterfaceError:  # released by a closing pool
            return False

    async def close(self) -> None:
        """Stop listening and give the connection back; safe to call twice."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                for channel, adapter in self._adapters.items():
                    await connection.remove_listener(channel, adapter)
            with contextlib.suppress(Exception):
                await self._pool.release(connection)


def _adapter(callback: Callback) -> Callable[[Any, int, str, object], None]:
    def listener(_connection: Any, _pid: int, _channel: str, payload: object) -> None:
        callback(str(payload))

    return listener
