"""Structured logging: one JSON object per line, tagged with the service, request id and trace ids.

Every line carries ``time`` as ISO-8601 in UTC with milliseconds and a zone (``2026-12-06T23:59:59.123Z``), so lines
from services in different zones and from the node sort and compare as they are; ``request_id`` and, while a traced
call or batch is running, ``trace_id`` and ``span_id`` (the ids a trace backend shows), so a log line leads to its
trace and back.

Plate text is personal information (POPIA): code must not log it at INFO or above. Handlers log identifiers
that are not personal (camera ids, event ids are opaque) and counts.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

from pythonjsonlogger.json import JsonFormatter

from anpr.runtime import tracing
from anpr.runtime.context import current_request_id


def utc_timestamp(created: float) -> str:
    """``created`` (seconds since the epoch) as ISO-8601 UTC with milliseconds, e.g. 2026-12-06T23:59:59.123Z."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self._service
        record.request_id = current_request_id()
        ids = tracing.log_ids()
        record.trace_id = ids.get("trace_id")
        record.span_id = ids.get("span_id")
        return True


class _UtcJsonFormatter(JsonFormatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # logging's name
        return utc_timestamp(record.created)


class _UtcTextFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return utc_timestamp(record.created)


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Send all logs to stderr as JSON (or plain text for a terminal); safe to call more than once."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter(service))
    if fmt == "json":
        handler.setFormatter(
            _UtcJsonFormatter(
                "{asctime}{levelname}{name}{message}{service}{request_id}{trace_id}{span_id}",
                style="{",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            _UtcTextFormatter("%(asctime)s %(levelname)s %(service)s %(name)s [%(request_id)s]: %(message)s")
        )
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # grpc's own logger is chatty at INFO about transport details.
    logging.getLogger("grpc").setLevel(max(logging.WARNING, root.level))
