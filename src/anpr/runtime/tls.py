"""TLS on every gRPC link, from PEM files that are re-read when they change.

Servers use gRPC's dynamic SSL credentials: gRPC asks :class:`ServerCertificates` for the certificate before each
TLS handshake, and it answers with new key material only when the files' modification stamps changed (so a
rotated Kubernetes Secret or a renewed certificate serves new connections without a restart; established
connections keep the certificate they were opened with).

Client channels have no such hook in gRPC Python, so :class:`ReloadingChannel` opens a new channel when the CA,
certificate or key file changed and retires the old one with a grace period for its calls in flight. Stubs built
on a :class:`ReloadingChannel` need no change: every call goes to the current channel.

Plaintext is for loopback only: :func:`is_loopback_host` and :func:`target_is_loopback` tell the settings classes
whether a listen address or a client target leaves the machine, and they refuse plaintext there unless a setting
allows it explicitly.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grpc
import grpc.aio
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from anpr.runtime.errors import ConfigurationError

log = logging.getLogger(__name__)

ChannelOptions = Sequence[tuple[str, Any]]
# How often the files are looked at (a stat each); rotation is not urgent, handshakes and calls are.
DEFAULT_CHECK_INTERVAL_SECONDS = 1.0
# Calls in flight on a retired client channel get this long before it closes (a stream then ends and its owner
# reconnects on the new channel).
DEFAULT_RETIRE_GRACE_SECONDS = 30.0


# --- addresses ---------------------------------------------------------------------------------------------------


def is_loopback_host(host: str) -> bool:
    """Whether a listen or connect host stays on this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a DNS name, or a wildcard such as 0.0.0.0 / ::


def target_is_loopback(target: str) -> bool:
    """Whether every address of a gRPC target (``dns:///h:p``, ``ipv4:a,b``, ``h:p``, ``unix:...``) is local."""
    scheme, _, rest = target.partition(":")
    if scheme in {"unix", "unix-abstract"}:
        return True
    if scheme in {"ipv4", "ipv6"}:
        return all(is_loopback_host(_host_of(address)) for address in rest.split(","))
    if scheme == "dns" and rest.startswith("//"):
        rest = rest[2:].partition("/")[2]  # dns://[authority]/host:port
    elif scheme == "dns":
        pass
    else:
        rest = target
    return is_loopback_host(_host_of(rest))


def _host_of(address: str) -> str:
    if address.startswith("["):
        return address[1 : address.find("]")] if "]" in address else address
    host, separator, port = address.rpartition(":")
    if separator and port.isdecimal() and host.count(":") == 0:
        return host
    return address  # no port, or a bare IPv6 address


# --- files -------------------------------------------------------------------------------------------------------


def _stamp(paths: Sequence[Path]) -> tuple[tuple[int, int, int], ...]:
    """What changes when a file is rewritten or replaced (a Secret update swaps a symlink: stat follows it)."""
    stamps = []
    for path in paths:
        try:
            status = os.stat(path)
        except OSError:
            stamps.append((-1, -1, -1))
        else:
            stamps.append((status.st_mtime_ns, status.st_size, status.st_ino))
    return tuple(stamps)


def read_certificates(path: Path, what: str) -> bytes:
    """A PEM file of one or more certificates, checked to parse."""
    try:
        data = path.read_bytes()
        x509.load_pem_x509_certificates(data)
    except OSError as exc:
        raise ConfigurationError(f"cannot read {what} {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigurationError(f"{what} {path} holds no valid PEM certificate: {exc}") from exc
    return data


def read_key_pair(cert_file: Path, key_file: Path) -> tuple[bytes, bytes]:
    """(private key, certificate chain) PEM bytes, checked to belong together.

    A rotation that has replaced one file but not yet the other is refused here rather than at every handshake.
    """
    chain = read_certificates(cert_file, "certificate")
    try:
        key = key_file.read_bytes()
        private_key = serialization.load_pem_private_key(key, password=None)
    except OSError as exc:
        raise ConfigurationError(f"cannot read private key {key_file}: {exc.strerror}") from exc
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"{key_file} holds no unencrypted PEM private key: {exc}") from exc
    leaf = x509.load_pem_x509_certificates(chain)[0]
    public = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    if leaf.public_key().public_bytes(*public) != private_key.public_key().public_bytes(*public):
        raise ConfigurationError(f"private key {key_file} does not belong to certificate {cert_file}")
    return key, chain


# --- server ------------------------------------------------------------------------------------------------------


class ServerCertificates:
    """Server key material from files, served to gRPC's certificate fetcher and reloaded when the files change."""

    def __init__(
        self,
        cert_file: Path,
        key_file: Path,
        client_ca_file: Path | None = None,
        *,
        check_interval: float = DEFAULT_CHECK_INTERVAL_SECONDS,
    ) -> None:
        self._paths = [p for p in (cert_file, key_file, client_ca_file) if p is not None]
        self._cert_file, self._key_file, self._client_ca_file = cert_file, key_file, client_ca_file
        self._check_interval = check_interval
        self._lock = threading.Lock()  # the fetcher runs on gRPC's handshake threads
        self._checked = 0.0
        self._stamp = _stamp(self._paths)
        self._initial = self._load()  # refuses to start on unreadable or mismatched files
        self.reloads = 0

    @property
    def requires_client_certificate(self) -> bool:
        """Mutual TLS: clients must present a certificate the client CA signed."""
        return self._client_ca_file is not None

    def credentials(self) -> grpc.ServerCredentials:
        """Credentials whose certificate follows the files."""
        fetcher = cast(Callable[[], grpc.ServerCertificateConfiguration], self._fetch)  # None means "unchanged"
        return grpc.dynamic_ssl_server_credentials(
            self._initial, fetcher, require_client_authentication=self.requires_client_certificate
        )

    def _load(self) -> grpc.ServerCertificateConfiguration:
        key, chain = read_key_pair(self._cert_file, self._key_file)
        roots = None
        if self._client_ca_file is not None:
            roots = read_certificates(self._client_ca_file, "client CA bundle")
        return grpc.ssl_server_certificate_configuration([(key, chain)], root_certificates=roots)

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        with self._lock:
            now = time.monotonic()
            if now - self._checked < self._check_interval:
                return None
            self._checked = now
            stamp = _stamp(self._paths)
            if stamp == self._stamp:
                return None
            try:
                configuration = self._load()
            except ConfigurationError as exc:
                # Half-written rotation or a bad file: keep serving the old certificate; the next write changes
                # the stamp again and is tried then.
                log.warning("server certificate not reloaded, keeping the previous one: %s", exc)
                self._stamp = stamp
                return None
            self._stamp = stamp
            self.reloads += 1
            log.info("server certificate reloaded", extra={"certificate_file": str(self._cert_file)})
            return configuration


# --- client ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientTls:
    """How a client verifies its server and, for mutual TLS, proves who it is."""

    ca_file: Path | None = None  # None: the system's trusted roots
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None  # name expected in the server's certificate, when it differs from the target

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigurationError("a client certificate and its key must be given together")

    @property
    def files(self) -> tuple[Path, ...]:
        """The files whose change re-opens the channel."""
        return tuple(p for p in (self.ca_file, self.cert_file, self.key_file) if p is not None)

    def credentials(self) -> grpc.ChannelCredentials:
        """Channel credentials from the files as they are now."""
        roots = read_certificates(self.ca_file, "CA bundle") if self.ca_file is not None else None
        if self.cert_file is not None and self.key_file is not None:
            key, chain = read_key_pair(self.cert_file, self.key_file)
            return grpc.ssl_channel_credentials(roots, key, chain)
        return grpc.ssl_channel_credentials(roots)

    def options(self) -> list[tuple[str, Any]]:
        """Channel options TLS needs (the server name override)."""
        if self.server_name:
            return [("grpc.ssl_target_name_override", self.server_name), ("grpc.default_authority", self.server_name)]
        return []


def open_channel(
    target: str,
    tls: ClientTls | None,
    options: ChannelOptions = (),
    interceptors: Sequence[Any] = (),  # grpc.aio client interceptors (untyped in grpc-stubs)
) -> grpc.aio.Channel:
    """A channel to ``target``: plaintext without ``tls``, else TLS that follows its files (:class:`ReloadingChannel`).

    Unreadable or mismatched files raise :class:`ConfigurationError` here, at start-up.
    """
    if tls is None:
        return grpc.aio.insecure_channel(target, options=list(options), interceptors=list(interceptors))
    return ReloadingChannel(
        lambda: grpc.aio.secure_channel(
            target, tls.credentials(), [*options, *tls.options()], interceptors=list(interceptors)
        ),
        tls.files,
    )


class ReloadingChannel(grpc.aio.Channel):
    """A channel that re-opens itself when its certificate files change; calls always go to the current one."""

    def __init__(
        self,
        opener: Callable[[], grpc.aio.Channel],
        files: Sequence[Path],
        *,
        check_interval: float = DEFAULT_CHECK_INTERVAL_SECONDS,
        retire_grace: float = DEFAULT_RETIRE_GRACE_SECONDS,
    ) -> None:
        self._opener = opener
        self._files = tuple(files)
        self._check_interval = check_interval
        self._retire_grace = retire_grace
        self._stamp = _stamp(self._files)
        self._channel = opener()
        self._checked = time.monotonic()
        self._retiring: dict[asyncio.Task[None], grpc.aio.Channel] = {}
        self.reopens = 0

    def current(self) -> grpc.aio.Channel:
        """The channel for the next call, re-opened first when the files changed since it was opened."""
        now = time.monotonic()
        if now - self._checked < self._check_interval:
            return self._channel
        self._checked = now
        stamp = _stamp(self._files)
        if stamp == self._stamp:
            return self._channel
        self._stamp = stamp
        try:
            fresh = self._opener()
        except ConfigurationError as exc:
            log.warning("client certificates not reloaded, keeping the previous channel: %s", exc)
            return self._channel
        old, self._channel = self._channel, fresh
        self.reopens += 1
        log.info("client channel re-opened with new certificates")
        task = asyncio.get_running_loop().create_task(old.close(self._retire_grace))
        self._retiring[task] = old
        task.add_done_callback(lambda done: self._retiring.pop(done, None))
        return fresh

    # Multi-callables resolve the channel per call, so stubs made once keep following rotations.

    def unary_unary(
        self, method: str, request_serializer: Any = None, response_deserializer: Any = None, **kwargs: Any
    ) -> Any:
        return _PerCall(lambda: self.current().unary_unary(method, request_serializer, response_deserializer, **kwargs))

    def unary_stream(
        self, method: str, request_serializer: Any = None, response_deserializer: Any = None, **kwargs: Any
    ) -> Any:
        return _PerCall(
            lambda: self.current().unary_stream(method, request_serializer, response_deserializer, **kwargs)
        )

    def stream_unary(
        self, method: str, request_serializer: Any = None, response_deserializer: Any = None, **kwargs: Any
    ) -> Any:
        return _PerCall(
            lambda: self.current().stream_unary(method, request_serializer, response_deserializer, **kwargs)
        )

    def stream_stream(
        self, method: str, request_serializer: Any = None, response_deserializer: Any = None, **kwargs: Any
    ) -> Any:
        return _PerCall(
            lambda: self.current().stream_stream(method, request_serializer, response_deserializer, **kwargs)
        )

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self._channel.get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self._channel.wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self.current().channel_ready()

    async def close(self, grace: float | None = None) -> None:
        """Close the current channel and any still retiring (with the same grace)."""
        retiring = list(self._retiring.values())
        await asyncio.gather(self._channel.close(grace), *(old.close(grace) for old in retiring))

    async def __aenter__(self) -> ReloadingChannel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close(None)


class _PerCall:
    """A multi-callable that asks for the channel's current multi-callable at each call."""

    def __init__(self, resolve: Callable[[], Any]) -> None:
        self._resolve = resolve

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._resolve()(*args, **kwargs)
