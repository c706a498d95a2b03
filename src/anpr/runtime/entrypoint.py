"""The ``main()`` every service console script shares: load settings once, set up logging, run, exit cleanly."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from anpr.runtime.command_line import parse_command_line
from anpr.runtime.errors import ConfigurationError
from anpr.runtime.logs import configure_logging
from anpr.runtime.settings import ServiceSettings, load_settings
from anpr.runtime.tracing import tracing

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)

EXIT_CONFIGURATION = 2


def run_service(
    name: str,
    settings_class: type[SettingsT],
    serve: Callable[[SettingsT], Coroutine[Any, Any, None]],
    *,
    purpose: str,
    argv: Sequence[str] | None = None,
) -> None:
    """Run ``serve(settings)`` until it returns; configuration problems exit with status 2 and a readable message.

    ``argv`` (default ``sys.argv[1:]``) may only ask for ``--help``, which lists every setting and needs none.
    """
    parse_command_line(f"anpr-{name}", purpose, settings_class, sys.argv[1:] if argv is None else argv)
    try:
        settings = load_settings(settings_class)
        configure_logging(name, settings.log_level, settings.log_format)
        # Spans still buffered when the service has stopped are exported on the way out.
        with tracing(name, settings.otlp_endpoint, settings.trace_sample_ratio):
            asyncio.run(serve(settings))
    except ConfigurationError as exc:
        print(f"anpr-{name}: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIGURATION) from None
    except KeyboardInterrupt:  # a second Ctrl-C while shutting down
        raise SystemExit(130) from None
