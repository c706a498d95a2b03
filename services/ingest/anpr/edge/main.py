"""Console script ``anpr-edge``: load settings once, serve metrics, run the agent until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence

from anpr.edge.agent import EdgeAgent
from anpr.edge.settings import EdgeSettings
from anpr.runtime.command_line import parse_command_line
from anpr.runtime.errors import ConfigurationError
from anpr.runtime.logs import configure_logging
from anpr.runtime.metrics import start_metrics_endpoint
from anpr.runtime.settings import load_settings

EXIT_CONFIGURATION = 2
PURPOSE = (
    "The edge agent: captures frames from a camera, stream or video file, attaches GPS fixes, buffers frames on disk "
    "while ingest is unreachable and pushes them to ingest. Settings come from ANPR_EDGE_* environment variables."
)


async def run(settings: EdgeSettings) -> None:
    """Run the agent and its metrics endpoint until a termination signal."""
    try:
        endpoint = start_metrics_endpoint(settings.metrics_host, settings.metrics_port)
    except OSError as exc:
        where = f"{settings.metrics_host}:{settings.metrics_port}"
        raise ConfigurationError(f"cannot listen on {where} for metrics: {exc.strerror}") from exc
    agent = EdgeAgent(settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await agent.start()
        await stopping.wait()
    finally:
        await agent.stop()
        endpoint.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``anpr-edge`` (``argv``: the command line, default ``sys.argv[1:]``; only ``--help``)."""
    parse_command_line("anpr-edge", PURPOSE, EdgeSettings, sys.argv[1:] if argv is None else argv)
    try:
        settings = load_settings(EdgeSettings)
        configure_logging("edge", settings.log_level, settings.log_format)
        asyncio.run(run(settings))
    except ConfigurationError as exc:
        print(f"anpr-edge: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIGURATION) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
