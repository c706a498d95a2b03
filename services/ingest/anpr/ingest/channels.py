"""Client channels from ingest to other services: balancing, retries and the service token.

A ``dns:///name:port`` target resolves to every replica (a Kubernetes headless service); ``round_robin`` spreads
calls over all of them instead of pinning to the first address. The retry policy makes gRPC transparently retry
calls that failed with UNAVAILABLE (a replica restarting) on another replica. With TLS settings the channel
verifies the server (and presents ingest's client certificate for mutual TLS), and re-opens itself when the
certificate files change (:class:`anpr.runtime.tls.ReloadingChannel`).
"""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import grpc.aio

from anpr.runtime import tls
from anpr.runtime.errors import ConfigurationError


def service_config(service: str, attempts: int = 4) -> str:
    """Service config JSON: round-robin over all resolved addresses, retries on UNAVAILABLE with backoff."""
    return json.dumps(
        {
            "loadBalancingConfig": [{"round_robin": {}}],
            "methodConfig": [
                {
                    "name": [{"service": service}],
                    "retryPolicy": {
                        "maxAttempts": max(2, min(attempts, 5)),  # gRPC caps maxAttempts at 5
                        "initialBackoff": "0.1s",
                        "maxBackoff": "2s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ],
        }
    )


def open_channel(
    target: str, service: str, max_message_bytes: int, attempts: int = 4, client_tls: tls.ClientTls | None = None
) -> grpc.aio.Channel:
    """A channel to ``target`` with balancing and retries for ``service`` (full proto name); TLS with ``client_tls``,
    plaintext without."""
    return tls.open_channel(
        target,
        client_tls,
        options=[
            ("grpc.service_config", service_config(service, attempts)),
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
