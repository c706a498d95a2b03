"""The gRPC server every service runs: interceptors, health, reflection, metrics, TLS and graceful shutdown.

TLS (and mutual TLS with a client CA) comes from certificate files that are re-read when they change, see
:mod:`anpr.runtime.tls`.

A service's ``serve()`` builds its dependencies, creates a :class:`ServiceServer`, adds its servicers and calls
:meth:`ServiceServer.run`, which starts everything, waits for SIGTERM/SIGINT and shuts down in a fixed order:
health NOT_SERVING -> the service's drain callbacks (long-lived streams end with a status that tells the client to
reconnect elsewhere) -> ``server.stop(grace)`` (in-flight calls finish) -> metrics endpoint closed. The caller's
``AsyncExitStack`` then closes pools and model sessions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from anpr.runtime import metrics, page_tokens
from anpr.runtime.auth import AccessPolicy, TokenStore
from anpr.runtime.errors import ConfigurationError
from anpr.runtime.interceptors import standard_pipeline
from anpr.runtime.settings import ServiceSettings
from anpr.runtime.streams import StreamGuard
from anpr.runtime.tls import ServerCertificates

log = logging.getLogger(__name__)

Registrar = Callable[[Any, grpc.aio.Server], None]
Drain = Callable[[float], Awaitable[None]]


def suite_version() -> str:
    """The installed version of the suite."""
    try:
        return version("anpr-suite")
    except PackageNotFoundError:
        return "0+unknown"


class ServiceServer:
    """One service's gRPC server with its standard companions."""

    def __init__(
        self,
        name: str,
        settings: ServiceSettings,
        policy: AccessPolicy,
        channel_options: Sequence[tuple[str, int | str]] = (),
    ) -> None:
        self.name = name
        self.settings = settings
        self._tokens = TokenStore(settings.auth_tokens_file)
        if settings.page_token_key_file is not None:
            page_tokens.use_key_file(settings.page_token_key_file)
        self._server = grpc.aio.server(
            # The stream guard sits inside the pipeline: it sees the authenticated caller, and its refusals pass
            # through the pipeline's error boundary and metrics.
            interceptors=[
                standard_pipeline(self._tokens, policy),
                StreamGuard(settings.max_streams_per_principal, settings.stream_idle_timeout_seconds),
            ],
            options=[
                ("grpc.max_receive_message_length", settings.max_message_bytes),
                ("grpc.max_send_message_length", settings.max_message_bytes),
                ("grpc.so_reuseport", 0),
                *channel_options,
            ],
        )
        self._health = health.aio.HealthServicer()  # type: ignore[attr-defined]  # grpc-stubs predates the aio servicer
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        self._service_names: list[str] = []
        self._drains: list[Drain] = []
        self._metrics: metrics.MetricsEndpoint | None = None
        self._stopping: asyncio.Event | None = None
        self._stopped = False
        self._health_server: grpc.aio.Server | None = None
        self.certificates: ServerCertificates | None = None
        self.port = 0
        self.metrics_port = 0
        self.health_port = 0

    def add(self, servicer: object, registrar: Registrar, full_service_name: str) -> None:
        """Register a servicer (with the generated ``add_XServicer_to_server``) under its full proto name."""
        registrar(servicer, self._server)
        self._service_names.append(full_service_name)

    def on_drain(self, drain: Drain) -> None:
        """Run ``drain(grace)`` at shutdown, after health turned NOT_SERVING and before the server stops.

        A drain ends the service's long-lived streams (so that the grace period is not spent waiting for clients
        that would never hang up) and should take a bounded share of ``grace``.
        """
        self._drains.append(drain)

    @property
    def address(self) -> str:
        """host:port clients use to reach the server."""
        return f"{self.settings.grpc_host}:{self.port}"

    async def start(self, warm_up: Callable[[], Awaitable[None]] | None = None) -> None:
        """Bind, start serving, run the optional warm-up, then report SERVING."""
        reflection.enable_server_reflection(
            (*self._service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server
        )
        target = f"{self.settings.grpc_host}:{self.settings.grpc_port}"
        credentials = self._credentials()
        try:
            if credentials is not None:
                self.port = self._server.add_secure_port(target, credentials)
            else:
                self.port = self._server.add_insecure_port(target)
        except RuntimeError as exc:
            raise ConfigurationError(f"cannot listen on {target} for gRPC: port in use or address invalid") from exc
        self._add_health_listener()
        try:
            self._metrics = metrics.start_metrics_endpoint(self.settings.metrics_host, self.settings.metrics_port)
        except OSError as exc:
            where = f"{self.settings.metrics_host}:{self.settings.metrics_port}"
            raise ConfigurationError(f"cannot listen on {where} for metrics: {exc.strerror}") from exc
        self.metrics_port = self._metrics.port
        metrics.BUILD_INFO.labels(self.name, suite_version()).set(1)
        for name in (*self._service_names, health.OVERALL_HEALTH):
            await self._health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self._server.start()
        if self._health_server is not None:
            await self._health_server.start()
        if warm_up is not None:
            await warm_up()
        for name in (*self._service_names, health.OVERALL_HEALTH):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._write_ready_file()
        log.info(
            "%s serving",
            self.name,
            extra={
                "grpc_address": self.address,
                "metrics_port": self.metrics_port,
                "tls": self._tls_mode,
                "health_port": self.health_port or None,
            },
        )

    @property
    def _tls_mode(self) -> str:
        if self.certificates is None:
            return "off"
        return "mutual" if self.certificates.requires_client_certificate else "server"

    def _credentials(self) -> grpc.ServerCredentials | None:
        """TLS credentials that follow the certificate files (re-read on change), or None for plaintext."""
        cert, key, ca = self.settings.tls_cert_file, self.settings.tls_key_file, self.settings.tls_client_ca_file
        if cert is None or key is None:
            return None
        self.certificates = ServerCertificates(cert, key, ca)
        return self.certificates.credentials()

    def _add_health_listener(self) -> None:
        """Plaintext grpc.health.v1 only, for probes that cannot speak TLS; it reveals nothing but SERVING."""
        if self.settings.health_port is None:
            return
        target = f"{self.settings.grpc_host}:{self.settings.health_port}"
        self._health_server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._health_server)
        try:
            self.health_port = self._health_server.add_insecure_port(target)
        except RuntimeError as exc:
            raise ConfigurationError(f"cannot listen on {target} for health checks: port in use") from exc

    def _write_ready_file(self) -> None:
        path = self.settings.ready_file
        if path is None:
            return
        document = {
            "service": self.name,
            "grpc_address": self.address,
            "metrics_url": f"http://{self.settings.metrics_host}:{self.metrics_port}/metrics",
            "pid": os.getpid(),
        }
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(json.dumps(document))
        temporary.replace(path)  # atomic: readers never see half a file

    async def stop(self, grace: float | None = None) -> None:
        """Graceful shutdown; a second call returns at once."""
        if self._stopped:
            return
        self._stopped = True
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        log.info("%s shutting down", self.name, extra={"grace_seconds": grace})
        await self._health.enter_graceful_shutdown()
        started = asyncio.get_running_loop().time()
        for drain in self._drains:
            try:
                await drain(grace)
            except Exception:
                log.exception("drain of %s failed; stopping anyway", self.name)
        spent = asyncio.get_running_loop().time() - started
        await self._server.stop(max(grace - spent, 0.5))
        if self._health_server is not None:
            await self._health_server.stop(0)
        if self._metrics is not None:
            await asyncio.to_thread(self._metrics.close)  # shutdown() waits for the serving thread's poll
        if self._stopping is not None:
            self._stopping.set()

    async def run(self, warm_up: Callable[[], Awaitable[None]] | None = None) -> None:
        """Start, serve until SIGTERM or SIGINT, then stop gracefully."""
        self._stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        shutdown_tasks: set[asyncio.Task[None]] = set()

        def on_signal(signum: int) -> None:
            log.info("received %s", signal.Signals(signum).name)
            task = loop.create_task(self.stop())
            shutdown_tasks.add(task)
            task.add_done_callback(shutdown_tasks.discard)

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
        try:
            await self.start(warm_up)
            await self._stopping.wait()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            await self.stop()
