"""Process entry point of the recognize service: build dependencies, serve, shut down in order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anpr.api.recognize.v1 import recognize_service_pb2_grpc
from anpr.recognize.access import ACCESS_POLICY, SERVICE_NAME
from anpr.recognize.settings import RecognizeSettings
from anpr.runtime.entrypoint import run_service
from anpr.runtime.server import ServiceServer


@asynccontextmanager
async def build(settings: RecognizeSettings) -> AsyncIterator[ServiceServer]:
    """Yield the service's server, not yet started."""
    server = ServiceServer("recognize", settings, ACCESS_POLICY)
    # The generated base answers UNIMPLEMENTED for every RPC until the service's capability lands.
    server.add(
        recognize_service_pb2_grpc.RecognizeServiceServicer(),  # type: ignore[abstract]
        recognize_service_pb2_grpc.add_RecognizeServiceServicer_to_server,
        SERVICE_NAME,
    )
    yield server


async def serve(settings: RecognizeSettings) -> None:
    """Run the recognize service until SIGTERM, then close its resources."""
    async with build(settings) as server:
        await server.run()


def main() -> None:
    """Console script ``anpr-recognize``."""
    run_service("recognize", RecognizeSettings, serve)
