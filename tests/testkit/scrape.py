"""Small HTTP helpers for tests (metrics scrapes)."""

from __future__ import annotations

import asyncio
import urllib.request

from testkit.polling import wait_until_async


async def fetch_text(url: str) -> str:
    """GET an http:// URL off the event loop and return the body as text."""
    if not url.startswith("http://"):
        raise ValueError(f"only plain http URLs are fetched in tests, not {url!r}")
    return await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())  # noqa: S310


async def fetch_text_containing(url: str, needle: str, seconds: float = 10.0) -> str:
    """Scrape ``url`` until the text holds ``needle`` and return it. A gRPC call is counted once its status has
    been sent, so a client that scrapes right after the reply can come first."""
    text = ""

    async def holds() -> bool:
        nonlocal text
        text = await fetch_text(url)
        return needle in text

    await wait_until_async(holds, seconds)
    return text
