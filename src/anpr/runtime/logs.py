"""Structured logging: one JSON object per line, tagged with the service and the current request id.

Plate text is personal information (POPIA): code must not log it at INFO or above. Handlers log identifiers
that are not personal (camera ids, event ids are opaque) and counts.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from anpr.runtime.context import current_request_id


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self._service
        record.request_id = current_request_id()
        return True


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Send all logs to stderr as JSON (or plain text for a terminal); safe to call more than once."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter(service))
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "{asctime}{levelname}{name}{message}{service}{request_id}",
                style="{",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(service)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # grpc's own logger is chatty at INFO about transport details.
    logging.getLogger("grpc").setLevel(max(logging.WARNING, root.level))
