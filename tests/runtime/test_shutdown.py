"""SIGTERM on a real service process: health turns NOT_SERVING, in-flight calls finish, the process exits 0."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

TESTS_DIR = Path(__file__).parents[1]


async def _start_probe(tmp_path: Path, tokens_file: Path, grace: float) -> tuple[asyncio.subprocess.Process, str]:
    ready = tmp_path / "ready.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(TESTS_DIR),
        "ANPR_PROBE_AUTH_TOKENS_FILE": str(tokens_file),
        "ANPR_PROBE_READY_FILE": str(ready),
        "ANPR_PROBE_SHUTDOWN_GRACE_SECONDS": str(grace),
    }
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "testkit.probe_service", env=env)
    for _ in range(400):
        if ready.exists():
            return process, json.loads(ready.read_text())["grpc_address"]
        assert process.returncode is None, "probe exited before it was ready"
        await asyncio.sleep(0.025)
    process.kill()
    raise AssertionError("probe did not become ready")


async def test_sigterm_lets_in_flight_call_finish(tmp_path: Path, tokens_file: Path, tokens: dict[str, str]) -> None:
    process, address = await _start_probe(tmp_path, tokens_file, grace=10)
    metadata = (("authorization", f"Bearer {tokens['operator']}"),)
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        sleep = channel.unary_unary("/test.Probe/Sleep", request_serializer=bytes, response_deserializer=bytes)
        in_flight = asyncio.ensure_future(sleep(b"1.5", metadata=metadata))
        await asyncio.sleep(0.3)  # the call is now running on the server
        process.send_signal(signal.SIGTERM)
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert await in_flight == b"slept"
    assert await asyncio.wait_for(process.wait(), 15) == 0


async def test_calls_past_the_grace_period_are_cancelled(
    tmp_path: Path, tokens_file: Path, tokens: dict[str, str]
) -> None:
    process, address = await _start_probe(tmp_path, tokens_file, grace=0.5)
    metadata = (("authorization", f"Bearer {tokens['operator']}"),)
    async with grpc.aio.insecure_channel(address) as channel:
        sleep = channel.unary_unary("/test.Probe/Sleep", request_serializer=bytes, response_deserializer=bytes)
        in_flight = asyncio.ensure_future(sleep(b"30", metadata=metadata))
        await asyncio.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await in_flight  # a 30 s call cannot finish within a 0.5 s grace period
        assert error.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    assert await asyncio.wait_for(process.wait(), 15) == 0
