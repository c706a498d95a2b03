"""Process entry point of the ingest service: build dependencies, serve, shut down in order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from importlib.resources import files

from anpr.api.ingest.v1 import ingest_service_pb2_grpc
from anpr.ingest.access import ACCESS_POLICY, SERVICE_NAME
from anpr.ingest.settings import IngestSettings
from anpr.runtime.database import open_pool
from anpr.runtime.entrypoint import run_service
from anpr.runtime.migrations import migrate
from anpr.runtime.server import ServiceServer

DATABASE_SCHEMA = "ingest"


@asynccontextmanager
async def build(settings: IngestSettings) -> AsyncIterator[ServiceServer]:
    """Open the service's resources and yield its server, not yet started; resources close on exit."""
    async with AsyncExitStack() as resources:
        pool = await resources.enter_async_context(open_pool(settings))
        await migrate(pool, DATABASE_SCHEMA, files("anpr.ingest") / "migrations")
        server = ServiceServer("ingest", settings, ACCESS_POLICY)
        # The generated base answers UNIMPLEMENTED for every RPC until the service's capability lands.
        server.add(
            ingest_service_pb2_grpc.IngestServiceServicer(),  # type: ignore[abstract]
            ingest_service_pb2_grpc.add_IngestServiceServicer_to_server,
            SERVICE_NAME,
        )
        yield server


async def serve(settings: IngestSettings) -> None:
    """Run the ingest service until SIGTERM, then close its resources."""
    async with build(settings) as server:
        await server.run()


def main() -> None:
    """Console script ``anpr-ingest``."""
    run_service("ingest", IngestSettings, serve)
