"""``anpr up``: the whole suite as supervised processes, driven through its --json line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from anpr.runtime.auth import Role
from testkit.scrape import fetch_text_containing

SERVICE_NAMES = {
    "ingest": "anpr.ingest.v1.IngestService",
    "recognize": "anpr.recognize.v1.RecognizeService",
    "hotlist": "anpr.hotlist.v1.HotlistService",
}
A_METHOD = {"ingest": "ListCameras", "recognize": "GetModelInfo", "hotlist": "ListHotlists"}


async def _launch(data_dir: Path, database_url: str | None, *extra: str) -> asyncio.subprocess.Process:
    args = [sys.executable, "-m", "anpr.cli.main", "up", "--json", "--data-dir", str(data_dir), *extra]
    if database_url:
        args += ["--database-url", database_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANPR_")}
    return await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )


@pytest.fixture
async def suite(tmp_path: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, dict[str, Any]]]:
    # Use the configured server when there is one; otherwise `up` starts its own embedded PostgreSQL.
    process = await _launch(tmp_path / "up", os.environ.get("ANPR_TEST_DATABASE_URL"))
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 120)
        assert line, await _stderr(process)
        yield process, json.loads(line)
    finally:
        await _stop(process)


async def _stderr(process: asyncio.subprocess.Process) -> str:
    """What ``up`` wrote to stderr so far (bounded: a service it started may still hold the pipe open)."""
    if process.stderr is None:
        return "no output"
    try:
        return (await asyncio.wait_for(process.stderr.read(), 10)).decode()
    except TimeoutError:
        return "stderr still open after 10 s"


async def _stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM first, so ``up`` stops its services; SIGKILL would leave them running without it."""
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()


async def test_up_starts_every_service_and_stops_cleanly(
    suite: tuple[asyncio.subprocess.Process, dict[str, Any]],
) -> None:
    process, summary = suite
    assert set(summary["services"]) == set(SERVICE_NAMES)
    assert set(summary["tokens"]) == {role.value for role in Role}
    tls = summary["tls"]  # on by default: mutual TLS between services, TLS to every client
    assert tls["mutual"] == ["hotlist", "recognize"]
    ca, credentials = _credentials(tls)
    for name, where in summary["services"].items():
        assert not await _answers_health(grpc.aio.insecure_channel(where["grpc_address"]))
        without_certificate = grpc.aio.secure_channel(where["grpc_address"], grpc.ssl_channel_credentials(ca))
        assert await _answers_health(without_certificate) is (name not in tls["mutual"])
        async with grpc.aio.secure_channel(where["grpc_address"], credentials) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAMES[name])
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            anonymous = channel.unary_unary(
                f"/{SERVICE_NAMES[name]}/{A_METHOD[name]}",
                request_serializer=bytes,
                response_deserializer=bytes,
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await anonymous(b"")
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert 'grpc_code="UNAUTHENTICATED"' in await fetch_text_containing(
            where["metrics_url"], 'grpc_code="UNAUTHENTICATED"'
        )
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 60) == 0


def _credentials(tls: dict[str, Any]) -> tuple[bytes, grpc.ChannelCredentials]:
    """The development CA, and credentials with the client certificate ``anpr up`` issued."""
    ca = Path(tls["ca_file"]).read_bytes()
    key, chain = Path(tls["client_key_file"]).read_bytes(), Path(tls["client_cert_file"]).read_bytes()
    return ca, grpc.ssl_channel_credentials(ca, key, chain)


async def _answers_health(channel: grpc.aio.Channel) -> bool:
    """Whether the channel's handshake succeeds (False: refused at the transport, UNAVAILABLE)."""
    async with channel:
        try:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            return False
    return True


async def test_a_crashed_service_is_reported(suite: tuple[asyncio.subprocess.Process, dict[str, Any]]) -> None:
    process, summary = suite
    pid = await _pid_of_service(summary, "hotlist")
    os.kill(pid, signal.SIGKILL)
    assert await asyncio.wait_for(process.wait(), 60) == 1
    assert "hotlist exited unexpectedly with status -9" in await _stderr(process)


async def _pid_of_service(summary: dict[str, Any], name: str) -> int:
    data_dir = Path(summary["data_dir"])
    return int(json.loads((data_dir / f"{name}.ready.json").read_text())["pid"])


async def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await _launch(
            tmp_path / "up", os.environ.get("ANPR_TEST_DATABASE_URL"), "--recognize-port", str(port)
        )
        _, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 1
    text = stderr.decode()
    assert f"cannot listen on 127.0.0.1:{port} for gRPC" in text
    assert "recognize exited with status 2 while starting" in text
