"""Waiting for a condition that other tasks or servers make true."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def wait_until(condition: Callable[[], bool], seconds: float = 10.0, interval: float = 0.05) -> None:
    """Poll ``condition`` until it holds; TimeoutError after ``seconds``."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110  (the state lives in other servers; there is no event to await)
            await asyncio.sleep(interval)


async def wait_until_async(
    condition: Callable[[], Awaitable[bool]], seconds: float = 10.0, interval: float = 0.05
) -> None:
    """Poll an asynchronous ``condition`` (a query of a server) until it holds; TimeoutError after ``seconds``."""
    async with asyncio.timeout(seconds):
        while not await condition():  # noqa: ASYNC110  (see wait_until)
            await asyncio.sleep(interval)
