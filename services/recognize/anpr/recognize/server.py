"""Process entry point of the recognize service: load and warm the models, serve, shut down in order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from anpr.api.recognize.v1 import recognize_service_pb2_grpc
from anpr.recognize.access import ACCESS_POLICY, SERVICE_NAME
from anpr.recognize.settings import RecognizeSettings
from anpr.runtime.entrypoint import run_service
from anpr.runtime.server import ServiceServer


@asynccontextmanager
async def build(settings: RecognizeSettings) -> AsyncIterator[ServiceServer]:
    """Load and warm the models (health reports SERVING only after this), then yield the server, not yet started."""
    # Imported here, not at the top: without the recognize extra (ONNX Runtime), `anpr-recognize --help` still
    # answers and a start fails with MissingExtraError's install hint instead of a traceback.
    from anpr.recognize.engine import RecognitionEngine
    from anpr.recognize.servicer import RecognizeServicer

    engine = RecognitionEngine(settings)
    await engine.start()
    try:
        server = ServiceServer("recognize", settings, ACCESS_POLICY)
        server.add(
            RecognizeServicer(engine, settings),
            recognize_service_pb2_grpc.add_RecognizeServiceServicer_to_server,
            SERVICE_NAME,
        )
        yield server
    finally:
        await engine.close()


async def serve(settings: RecognizeSettings) -> None:
    """Run the recognize service until SIGTERM, then release the models."""
    async with build(settings) as server:
        await server.run()


PURPOSE = (
    "The recognize service: finds and reads number plates in images with its detector and OCR models."
    " Settings come from ANPR_RECOGNIZE_* environment variables."
)


def main(argv: Sequence[str] | None = None) -> None:
    """Console script ``anpr-recognize`` (``argv``: the command line, default ``sys.argv[1:]``; only ``--help``)."""
    run_service("recognize", RecognizeSettings, serve, purpose=PURPOSE, argv=argv)
