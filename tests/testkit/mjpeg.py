"""A tiny HTTP Motion-JPEG server (multipart/x-mixed-replace), as IP cameras serve, for pulled-source tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


@asynccontextmanager
async def mjpeg_server(jpeg: bytes, frames: int, fps: float) -> AsyncIterator[tuple[str, list[int]]]:
    """Serve ``frames`` copies of ``jpeg`` at ``fps`` per connection, then hang up; yields (URL, connections)."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n")
            for _ in range(frames):
                part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                writer.write(part + jpeg + b"\r\n")
                await writer.drain()
                await asyncio.sleep(1 / fps)
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client went away
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/video.mjpg", connections
    finally:
        server.close()
