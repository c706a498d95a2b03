"""The suite over TLS: mutual TLS between ingest, recognize and hotlist, TLS to clients, certificates from the
development CA that ``anpr up`` uses; clients without a certificate, or without TLS, are refused."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from anpr.api.hotlist.v1 import hotlist_pb2, hotlist_service_pb2, hotlist_service_pb2_grpc
from anpr.api.ingest.v1 import ingest_service_pb2
from anpr.cli import hotlist as hotlist_cli
from anpr.cli.devca import DevelopmentCA, Issued
from anpr.ingest.settings import IngestSettings
from anpr.runtime.errors import ConfigurationError
from anpr.runtime.server import ServiceServer
from anpr.runtime.settings import load_settings
from anpr.runtime.tls import ClientTls, open_channel
from testkit.frames import frame
from testkit.ingest_env import IngestEnvironment, bearer, fixed_camera, register, stub
from testkit.passes import PassScript


def _serving(issued: Issued, client_ca: Path | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {"tls_cert_file": str(issued.cert_file), "tls_key_file": str(issued.key_file)}
    if client_ca is not None:
        values["tls_client_ca_file"] = str(client_ca)
    return values


async def _list_hotlists(channel: grpc.aio.Channel, token: str) -> hotlist_service_pb2.ListHotlistsResponse:
    stub = hotlist_service_pb2_grpc.HotlistServiceStub(channel)
    reply: hotlist_service_pb2.ListHotlistsResponse = await stub.ListHotlists(
        hotlist_service_pb2.ListHotlistsRequest(), metadata=bearer(token), timeout=5
    )
    return reply


async def test_a_frame_becomes_a_stored_event_with_mutual_tls_between_services(
    env: IngestEnvironment, tmp_path: Path
) -> None:
    ca = DevelopmentCA.open(tmp_path / "tls")
    hotlist = await env.start_service("hotlist", **_serving(ca.issue("hotlist"), client_ca=ca.cert_file))
    recognize = await env.start_recognize(**_serving(ca.issue("recognize"), client_ca=ca.cert_file))
    ingest_identity = ca.issue("ingest")
    ingest = await env.start_ingest(
        recognize_target=f"dns:///127.0.0.1:{recognize.port}",
        hotlist_target=f"dns:///127.0.0.1:{hotlist.port}",
        client_tls_ca_file=str(ca.cert_file),
        client_tls_cert_file=str(ingest_identity.cert_file),
        client_tls_key_file=str(ingest_identity.key_file),
        track_max_missed_frames="3",
        **_serving(ingest_identity),  # TLS to cameras, no client certificate asked of them
    )
    script = PassScript()
    script.add_pass("CA909090", 0, 7)
    start = time.time() - 5
    async with open_channel(ingest.address, ClientTls(ca.cert_file)) as channel:
        cameras = stub(channel)
        await register(cameras, env, fixed_camera("cam-tls"))
        requests = [
            ingest_service_pb2.PushFramesRequest(frame=frame("cam-tls", f"f{n}", script.image(n), at=start + n / 10))
            for n in range(12)
        ]
        [r async for r in cameras.PushFrames(iter(requests), metadata=env.metadata("camera"))]
        [read] = await env.wait_for_count(1, seconds=30)  # recognised through recognize, stored by hotlist
    assert read.plate == "CA909090"

    await _refuses_clients_without_a_certificate(hotlist, ca, env.tokens["operator"])
    await _refuses_clients_without_a_certificate(recognize, ca, env.tokens["operator"])
    async with grpc.aio.insecure_channel(ingest.address) as plaintext:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub(plaintext).ListCameras(
                ingest_service_pb2.ListCamerasRequest(), metadata=env.metadata("operator"), timeout=5
            )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def _refuses_clients_without_a_certificate(server: ServiceServer, ca: DevelopmentCA, token: str) -> None:
    async with open_channel(server.address, ClientTls(ca.cert_file)) as no_certificate:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _list_hotlists(no_certificate, token)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # the handshake failed: no call reached it
    async with grpc.aio.insecure_channel(server.address) as plaintext:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _list_hotlists(plaintext, token)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_hotlist_import_speaks_mutual_tls(env: IngestEnvironment, tmp_path: Path) -> None:
    ca = DevelopmentCA.open(tmp_path / "tls")
    hotlist = await env.start_service("hotlist", **_serving(ca.issue("hotlist"), client_ca=ca.cert_file))
    client = ca.issue("client")
    path = tmp_path / "list.csv"
    path.write_text("plate,reason\nCA123456,stolen\n")
    with_certificate = ClientTls(ca.cert_file, client.cert_file, client.key_file)
    async with open_channel(hotlist.address, with_certificate) as channel:
        await hotlist_service_pb2_grpc.HotlistServiceStub(channel).CreateHotlist(
            hotlist_service_pb2.CreateHotlistRequest(hotlist=hotlist_pb2.Hotlist(name="stolen", active=True)),
            metadata=bearer(env.tokens["hotlist-admin"]),
        )
    token = env.tokens["hotlist-admin"]
    result = await hotlist_cli.import_file(hotlist.address, token, path, "stolen", client_tls=with_certificate)
    assert (result.created_count, result.applied) == (1, True)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await hotlist_cli.import_file(hotlist.address, token, path, "stolen", client_tls=ClientTls(ca.cert_file))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_ingest_refuses_to_send_its_token_in_clear_beyond_loopback(
    service_environment: dict[str, str], tmp_path: Path
) -> None:
    values = {**service_environment, "spool_path": str(tmp_path / "spool.sqlite3")}
    remote = {"recognize_target": "dns:///anpr-recognize-headless:50052"}
    with pytest.raises(ConfigurationError, match=r"recognize_target .* TLS to it is off"):
        load_settings(IngestSettings, environ={}, **values, **remote)
    assert load_settings(IngestSettings, environ={}, **values, **remote, allow_plaintext="true").allow_plaintext
    ca = DevelopmentCA.open(tmp_path / "tls")
    secured = load_settings(IngestSettings, environ={}, **values, **remote, client_tls_ca_file=str(ca.cert_file))
    assert secured.client_tls("anpr-recognize") == ClientTls(ca.cert_file, server_name="anpr-recognize")
