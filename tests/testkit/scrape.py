"""Small HTTP helpers for tests (metrics scrapes)."""

from __future__ import annotations

import asyncio
import urllib.request


async def fetch_text(url: str) -> str:
    """GET an http:// URL off the event loop and return the body as text."""
    if not url.startswith("http://"):
        raise ValueError(f"only plain http URLs are fetched in tests, not {url!r}")
    return await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())  # noqa: S310
