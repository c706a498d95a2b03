"""Client channels from ingest (and the edge agent) to other services: balancing, retries, the service token.

A ``dns:///name:port`` target resolves to every replica (a Kubernetes headless service); ``round_robin`` spreads
calls over all of them instead of pinning to the first address. With TLS settings the channel verifies the server
(and presents ingest's client certificate for mutual TLS), and re-opens itself when the certificate files change
(:class:`anpr.runtime.tls.ReloadingChannel`). Every call forwards the request id and, with tracing on, the trace
context (:func:`anpr.runtime.interceptors.client_interceptors`).

Retries live in one layer per call (see :mod:`anpr.runtime.retries`): ingest's Recognize and ReportReads calls and
the edge agent's PushFrames stream each have their own loop that never gives up (the frames and events are durable
on disk until answered), so their channels carry no gRPC retry policy.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import grpc.aio

from anpr.runtime import tls
from anpr.runtime.errors import ConfigurationError
from anpr.runtime.interceptors import client_interceptors
from anpr.runtime.retries import service_config

__all__ = ["open_channel", "service_config", "token_metadata"]


def open_channel(
    target: str,
    service: str,
    max_message_bytes: int,
    retry_attempts: int = 0,
    client_tls: tls.ClientTls | None = None,
) -> grpc.aio.Channel:
    """A channel to ``target`` balancing calls to ``service`` (full proto name); gRPC retries only with
    ``retry_attempts`` > 1 (see the module's note); TLS with ``client_tls``, plaintext without."""
    return tls.open_channel(
        target,
        client_tls,
        interceptors=client_interceptors(),
        options=[
            ("grpc.service_config", service_config(service, retry_attempts)),
            ("grpc.enable_retries", 1),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
            # Re-resolve DNS soon after a replica disappears so new replicas are picked up.
            ("grpc.dns_min_time_between_resolutions_ms", 5000),
            ("grpc.keepalive_time_ms", 30_000),
            # gRPC's default reconnect backoff grows to 120 s; a restarted replica must get work again within
            # about a second (measured before: calls still failed 4 s after recognize was ready).
            # Not grpc.min_reconnect_backoff_ms: gRPC core uses it as the minimum time a connection attempt may
            # take (grpc/grpc#12830); the fault harness, set to 100 ms, saw "connection attempt timed out before
            # receiving SETTINGS frame" on a loaded machine.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ],
    )


def token_metadata(token_file: Path | None) -> tuple[tuple[str, str], ...]:
    """``authorization`` metadata carrying the token read from ``token_file`` (none when unset)."""
    if token_file is None:
        return ()
    try:
        token = token_file.read_text().strip()
    except OSError as exc:
        raise ConfigurationError(f"cannot read service_token_file {token_file}: {exc.strerror}") from exc
    if not token:
        raise ConfigurationError(f"service_token_file {token_file} is empty")
    return (("authorization", f"Bearer {token}"),)
