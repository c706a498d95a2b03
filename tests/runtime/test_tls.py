"""TLS from certificate files (re-read when they change), mutual TLS when a client CA is configured, and the
refusal to serve plaintext beyond loopback."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from anpr.runtime.errors import ConfigurationError
from anpr.runtime.server import ServiceServer
from anpr.runtime.settings import load_settings
from anpr.runtime.tls import (
    ClientTls,
    ReloadingChannel,
    ServerCertificates,
    is_loopback_host,
    target_is_loopback,
)
from testkit.certificates import Certificates, make_certificates
from testkit.probe_service import SERVICE, ProbeSettings, make_server


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path)


async def _start(environment: dict[str, str], **tls: str) -> ServiceServer:
    server = make_server(load_settings(ProbeSettings, environ={}, **environment, **tls))
    await server.start()
    return server


@pytest.fixture
async def tls_server(service_environment: dict[str, str], certificates: Certificates) -> AsyncIterator[ServiceServer]:
    server = await _start(
        service_environment, tls_cert_file=str(certificates.server_cert), tls_key_file=str(certificates.server_key)
    )
    yield server
    await server.stop(0.1)


async def _who_am_i(channel: grpc.aio.Channel, token: str) -> bytes:
    call = channel.unary_unary(f"/{SERVICE}/WhoAmI", request_serializer=bytes, response_deserializer=bytes)
    reply: bytes = await call(b"", metadata=(("authorization", f"Bearer {token}"),), timeout=5)
    return reply


async def test_tls_server_serves_tls_clients_only(
    tls_server: ServiceServer, certificates: Certificates, tokens: dict[str, str]
) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=certificates.ca.read_bytes())
    async with grpc.aio.secure_channel(tls_server.address, credentials) as channel:
        assert (await _who_am_i(channel, tokens["operator"])).startswith(b"test-operator ")
    async with grpc.aio.insecure_channel(tls_server.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as plain:
            await _who_am_i(channel, tokens["operator"])
    assert plain.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_requires_a_client_certificate(
    service_environment: dict[str, str], certificates: Certificates, tokens: dict[str, str]
) -> None:
    server = await _start(
        service_environment,
        tls_cert_file=str(certificates.server_cert),
        tls_key_file=str(certificates.server_key),
        tls_client_ca_file=str(certificates.ca),
    )
    try:
        with_client_cert = grpc.ssl_channel_credentials(
            root_certificates=certificates.ca.read_bytes(),
            private_key=certificates.client_key.read_bytes(),
            certificate_chain=certificates.client_cert.read_bytes(),
        )
        async with grpc.aio.secure_channel(server.address, with_client_cert) as channel:
            assert (await _who_am_i(channel, tokens["operator"])).startswith(b"test-operator ")
        without = grpc.ssl_channel_credentials(root_certificates=certificates.ca.read_bytes())
        async with grpc.aio.secure_channel(server.address, without) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _who_am_i(channel, tokens["operator"])
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(0.1)


# --- reloading, plaintext refusal, health listener -------------------------------------------------------------


def _copy(source: Certificates, target: Certificates) -> None:
    """Overwrite ``target``'s files with ``source``'s, the way a rotated Secret or a renewal replaces them."""
    for name in ("ca", "server_key", "server_cert", "client_key", "client_cert"):
        shutil.copyfile(getattr(source, name), getattr(target, name))


def _client_credentials(certificates: Certificates) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=certificates.ca.read_bytes(),
        private_key=certificates.client_key.read_bytes(),
        certificate_chain=certificates.client_cert.read_bytes(),
    )


async def _answers(address: str, credentials: grpc.ChannelCredentials, token: str) -> bool:
    """Whether a new connection with these credentials gets an answer (False: the handshake failed)."""
    async with grpc.aio.secure_channel(address, credentials) as channel:
        try:
            await _who_am_i(channel, token)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            return False
    return True


def _fresh_certificates(directory: Path) -> Certificates:
    directory.mkdir()
    return make_certificates(directory)


async def test_rotated_certificates_serve_new_connections_on_both_sides(
    service_environment: dict[str, str], tmp_path: Path, tokens: dict[str, str]
) -> None:
    live = _fresh_certificates(tmp_path / "live")  # the paths the server and the client are configured with
    old = _fresh_certificates(tmp_path / "old")
    _copy(old, live)
    new = _fresh_certificates(tmp_path / "new")  # another CA: old and new trust nothing of each other
    server = await _start(
        service_environment,
        tls_cert_file=str(live.server_cert),
        tls_key_file=str(live.server_key),
        tls_client_ca_file=str(live.ca),
    )
    client = ReloadingChannel(
        lambda: grpc.aio.secure_channel(
            server.address, ClientTls(live.ca, live.client_cert, live.client_key).credentials()
        ),
        [live.ca, live.client_cert, live.client_key],
        check_interval=0,
    )
    try:
        assert (await _who_am_i(client, tokens["operator"])).startswith(b"test-operator ")
        assert await _answers(server.address, _client_credentials(old), tokens["operator"])

        _copy(new, live)
        await asyncio.sleep(1.1)  # the server looks at its files at most once a second

        assert not await _answers(server.address, _client_credentials(old), tokens["operator"])
        assert await _answers(server.address, _client_credentials(new), tokens["operator"])
        assert server.certificates is not None
        assert server.certificates.reloads == 1
        # The long-lived client channel re-opened itself with the new files; stubs made before keep working.
        assert (await _who_am_i(client, tokens["operator"])).startswith(b"test-operator ")
        assert client.reopens == 1
    finally:
        await client.close(0)
        await server.stop(0.1)


async def test_a_half_written_rotation_keeps_the_previous_certificate(
    service_environment: dict[str, str], tmp_path: Path, tokens: dict[str, str]
) -> None:
    live = _fresh_certificates(tmp_path / "live")
    other = _fresh_certificates(tmp_path / "other")
    server = await _start(service_environment, tls_cert_file=str(live.server_cert), tls_key_file=str(live.server_key))
    try:
        shutil.copyfile(other.server_key, live.server_key)  # the key arrived, its certificate not yet
        await asyncio.sleep(1.1)
        assert await _answers(server.address, grpc.ssl_channel_credentials(live.ca.read_bytes()), tokens["operator"])
        shutil.copyfile(other.server_cert, live.server_cert)
        await asyncio.sleep(1.1)
        assert await _answers(server.address, grpc.ssl_channel_credentials(other.ca.read_bytes()), tokens["operator"])
    finally:
        await server.stop(0.1)


def test_a_key_that_does_not_match_its_certificate_is_refused_at_start(tmp_path: Path) -> None:
    one, two = _fresh_certificates(tmp_path / "one"), _fresh_certificates(tmp_path / "two")
    with pytest.raises(ConfigurationError, match="does not belong to certificate"):
        ServerCertificates(one.server_cert, two.server_key)
    with pytest.raises(ConfigurationError, match="does not belong to certificate"):
        ClientTls(one.ca, one.client_cert, two.client_key).credentials()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "anpr-hotlist"])
def test_plaintext_on_a_non_loopback_address_is_refused(
    service_environment: dict[str, str], certificates: Certificates, host: str
) -> None:
    with pytest.raises(ConfigurationError, match="is not a loopback address and TLS is off"):
        load_settings(ProbeSettings, environ={}, **{**service_environment, "grpc_host": host})
    allowed = load_settings(
        ProbeSettings, environ={}, **{**service_environment, "grpc_host": host, "allow_plaintext": "true"}
    )
    assert allowed.allow_plaintext
    with_tls = load_settings(
        ProbeSettings,
        environ={},
        **{**service_environment, "grpc_host": host},
        tls_cert_file=str(certificates.server_cert),
        tls_key_file=str(certificates.server_key),
    )
    assert with_tls.grpc_host == host


def test_the_refusal_exits_with_status_2_through_the_entrypoint(tokens_file: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ANPR_")}
    environment |= {"ANPR_HOTLIST_GRPC_HOST": "0.0.0.0", "ANPR_HOTLIST_AUTH_TOKENS_FILE": str(tokens_file)}
    result = subprocess.run(
        [sys.executable, "-m", "anpr.hotlist"], env=environment, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2, result.stderr
    assert "0.0.0.0 is not a loopback address and TLS is off" in result.stderr


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        *[("127.0.0.1", True), ("127.8.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True)],
        *[("0.0.0.0", False), ("::", False), ("192.168.1.4", False), ("anpr-hotlist", False)],
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize(
    ("target", "loopback"),
    [
        ("dns:///127.0.0.1:50052", True),
        ("dns://8.8.8.8/localhost:1", True),
        ("127.0.0.1:1", True),
        ("ipv4:127.0.0.1:1,127.0.0.2:2", True),
        ("ipv6:[::1]:1", True),
        ("unix:/run/anpr.sock", True),
        ("localhost", True),
        ("dns:///anpr-recognize-headless.anpr:50052", False),
        ("ipv4:127.0.0.1:1,10.0.0.1:2", False),
        ("[2001:db8::1]:443", False),
        ("ingest.example.org:443", False),
    ],
)
def test_loopback_targets(target: str, loopback: bool) -> None:
    assert target_is_loopback(target) is loopback


async def test_the_health_listener_answers_plaintext_probes_and_nothing_else(
    service_environment: dict[str, str], certificates: Certificates, tokens: dict[str, str]
) -> None:
    server = await _start(
        service_environment,
        tls_cert_file=str(certificates.server_cert),
        tls_key_file=str(certificates.server_key),
        tls_client_ca_file=str(certificates.ca),
        health_port="0",
    )
    try:
        health_address = f"127.0.0.1:{server.health_port}"
        async with grpc.aio.insecure_channel(health_address) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.aio.AioRpcError) as other:
                await _who_am_i(channel, tokens["operator"])
            assert other.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await server.stop(0.1)
