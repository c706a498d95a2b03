"""Prometheus metrics shared by all services and the HTTP endpoint that exposes them.

The gRPC server metrics follow the names of go-grpc-prometheus (``grpc_server_*``) so that stock Grafana
dashboards work. Service-specific metrics use the ``anpr_`` prefix and base units. Labels never carry plate text,
frame ids or event ids.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIServer

import asyncpg
from prometheus_client import Counter, Gauge, Histogram, start_http_server

GRPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")

GRPC_STARTED = Counter("grpc_server_started_total", "RPCs started on the server.", GRPC_LABELS)
GRPC_HANDLED = Counter(
    "grpc_server_handled_total", "RPCs completed on the server, by status code.", (*GRPC_LABELS, "grpc_code")
)
GRPC_HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from the start of an RPC until the server finished it.",
    GRPC_LABELS,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
AUTH_FAILURES = Counter("anpr_auth_failures_total", "Calls refused by authentication or authorisation.", ("reason",))
TOKENS_FILE_VALID = Gauge(
    "anpr_auth_tokens_file_valid", "1 while the tokens file in force is valid; 0 while every call is refused."
)
TOKENS_RELOAD_FAILURES = Counter(
    "anpr_auth_tokens_reload_failures_total", "Reloads of the tokens file that found it unreadable or invalid."
)
BUILD_INFO = Gauge(
    "anpr_build_info", "Constant 1, labelled with the running service and version.", ("service", "version")
)
DATABASE_ERRORS = Counter(
    "anpr_database_errors_total",
    "PostgreSQL statements or connection attempts that failed, by kind: connect, connection (lost), timeout, query "
    "(refused), conflict (serialization or deadlock, retried) or constraint (a unique or foreign key, expected).",
    ("error",),
)
# Background jobs that delete what is past its retention period. A job that only one replica runs at a time (an
# advisory lock) sets the timestamp on the replica that ran it: max over replicas is the fleet's last success.
# The label is not called "job": Prometheus' own target label of that name would rename it to exported_job.
RETENTION_LAST_SUCCESS = Gauge(
    "anpr_retention_last_success_timestamp_seconds",
    "Unix time of the last successful run of a retention job.",
    ("retention_job",),
)
RETENTION_INTERVAL = Gauge(
    "anpr_retention_interval_seconds",
    "How often a retention job is meant to run (for staleness alerts).",
    ("retention_job",),
)
RETENTION_FAILURES = Counter("anpr_retention_failures_total", "Failed runs of a retention job.", ("retention_job",))


def retention_succeeded(job: str) -> None:
    """Record a successful run of ``job`` now."""
    RETENTION_LAST_SUCCESS.labels(job).set(time.time())


def database_error_kind(exc: BaseException) -> str:
    """A bounded label for a failed statement: the connection broke, it timed out, or PostgreSQL refused it."""
    if isinstance(exc, TimeoutError | asyncpg.QueryCanceledError):
        return "timeout"
    if isinstance(exc, OSError | asyncpg.ConnectionDoesNotExistError | asyncpg.InterfaceError):
        return "connection"
    # Outcomes the services handle as part of their logic (AlreadyExists, Aborted), not database faults.
    if isinstance(exc, asyncpg.SerializationError | asyncpg.DeadlockDetectedError):
        return "conflict"
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return "constraint"
    return "query"


def _count_failed_statement(record: Any) -> None:
    exc = record.exception
    # A cancelled statement is the caller giving up (shutdown, a client deadline), not a database fault.
    if exc is not None and isinstance(exc, Exception):
        DATABASE_ERRORS.labels(database_error_kind(exc)).inc()


async def watch_database_connection(connection: asyncpg.Connection[Any]) -> None:
    """Pool ``init`` hook: count every failed statement on the connection in ``anpr_database_errors_total``."""
    connection.add_query_logger(_count_failed_statement)


async def counting_connect(*args: Any, **kwargs: Any) -> asyncpg.Connection[Any]:
    """Pool ``connect`` hook: ``asyncpg.connect``, counting failures (PostgreSQL down or refusing logins)."""
    try:
        connection: asyncpg.Connection[Any] = await asyncpg.connect(*args, **kwargs)
    except Exception:
        DATABASE_ERRORS.labels("connect").inc()
        raise
    return connection


@dataclass
class MetricsEndpoint:
    """A running Prometheus HTTP endpoint."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The bound port (useful when 0 was asked for)."""
        return int(self.server.server_port)

    def close(self) -> None:
        """Stop serving; safe to call twice."""
        self.server.shutdown()
        self.server.server_close()


def start_metrics_endpoint(host: str, port: int) -> MetricsEndpoint:
    """Serve the default registry at ``http://host:port/metrics``; raises OSError when the port is taken."""
    server, thread = start_http_server(port, addr=host)
    return MetricsEndpoint(server=server, thread=thread)
