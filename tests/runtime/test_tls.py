"""Optional TLS from certificate files, and mutual TLS when a client CA is configured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import pytest

from anpr.runtime.server import ServiceServer
from anpr.runtime.settings import load_settings
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
