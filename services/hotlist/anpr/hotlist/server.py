"""Process entry point of the hotlist service: build dependencies, serve, shut down in order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from importlib.resources import files

from anpr.api.hotlist.v1 import hotlist_service_pb2_grpc
from anpr.hotlist.access import ACCESS_POLICY, SERVICE_NAME
from anpr.hotlist.settings import HotlistSettings
from anpr.runtime.database import open_pool
from anpr.runtime.entrypoint import run_service
from anpr.runtime.migrations import migrate
from anpr.runtime.server import ServiceServer

DATABASE_SCHEMA = "hotlist"


@asynccontextmanager
async def build(settings: HotlistSettings) -> AsyncIterator[ServiceServer]:
    """Open the service's resources and yield its server, not yet started; resources close on exit."""
    async with AsyncExitStack() as resources:
        pool = await resources.enter_async_context(open_pool(settings))
        await migrate(pool, DATABASE_SCHEMA, files("anpr.hotlist") / "migrations")
        server = ServiceServer("hotlist", settings, ACCESS_POLICY)
        # The generated base answers UNIMPLEMENTED for every RPC until the service's capability lands.
        server.add(
            hotlist_service_pb2_grpc.HotlistServiceServicer(),  # type: ignore[abstract]
            hotlist_service_pb2_grpc.add_HotlistServiceServicer_to_server,
            SERVICE_NAME,
        )
        yield server


async def serve(settings: HotlistSettings) -> None:
    """Run the hotlist service until SIGTERM, then close its resources."""
    async with build(settings) as server:
        await server.run()


def main() -> None:
    """Console script ``anpr-hotlist``."""
    run_service("hotlist", HotlistSettings, serve)
