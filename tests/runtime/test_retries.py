"""One retry layer per call, counted on a real gRPC server on 127.0.0.1:0 that answers UNAVAILABLE.

ingest's Recognize loop is the only layer for its calls (each turn of the loop is one attempt on the wire, so the
loop's retry counter and backoff say what really happened); the operator command line's calls have gRPC's retry
policy, and its retry throttling stops retrying against a peer that keeps failing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
import pytest
from prometheus_client import REGISTRY

from anpr.api.recognize.v1 import recognition_pb2, recognize_service_pb2
from anpr.cli.calls import CALL_ATTEMPTS, channel
from anpr.cli.profile import Target
from anpr.ingest.channels import open_channel
from anpr.ingest.recognition import PendingFrame, RecognitionClient

RECOGNIZE = "anpr.recognize.v1.RecognizeService"


@dataclass
class Flaky:
    """A server whose every method fails UNAVAILABLE for its first ``failures`` calls, then answers."""

    address: str
    attempts: int = 0
    failures: int = 0


@pytest.fixture
async def flaky() -> AsyncIterator[Flaky]:
    server = grpc.aio.server()
    state = Flaky("")

    async def recognize(request: recognize_service_pb2.RecognizeRequest, context: Any) -> Any:
        state.attempts += 1
        if state.attempts <= state.failures:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")
        return recognize_service_pb2.RecognizeResponse(
            results=[recognition_pb2.ImageResult(image_id=image.image_id) for image in request.images]
        )

    handler = grpc.method_handlers_generic_handler(
        RECOGNIZE,
        {
            "Recognize": grpc.unary_unary_rpc_method_handler(
                recognize,
                request_deserializer=recognize_service_pb2.RecognizeRequest.FromString,
                response_serializer=recognize_service_pb2.RecognizeResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
    state.address = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    await server.start()
    yield state
    await server.stop(None)


def _retries() -> float:
    return REGISTRY.get_sample_value("anpr_ingest_recognition_retries_total") or 0.0


async def test_ingest_recognition_loop_is_the_only_retry_layer(flaky: Flaky) -> None:
    flaky.failures = 6  # more than gRPC's retry policy would have absorbed in one turn of the loop
    recognize_channel = open_channel(f"dns:///{flaky.address}", RECOGNIZE, 4 * 1024 * 1024)
    client = RecognitionClient(
        recognize_channel, (), deadline_seconds=5.0, backoff_initial_seconds=0.01, backoff_max_seconds=0.02
    )
    before = _retries()
    try:
        response = await client.recognize([PendingFrame("cam", "f-1", 0.0, b"jpeg")])
    finally:
        await recognize_channel.close(None)
    assert [r.image_id for r in response.results] == ["f-1"]
    assert flaky.attempts == 7
    # One wire attempt per turn of the loop: under a stacked gRPC retry policy the loop would have turned once.
    assert _retries() - before == 6


async def test_one_failed_call_on_an_ingest_channel_is_one_attempt(flaky: Flaky) -> None:
    flaky.failures = 1_000
    async with open_channel(f"dns:///{flaky.address}", RECOGNIZE, 4 * 1024 * 1024) as recognize_channel:
        call = recognize_channel.unary_unary(
            f"/{RECOGNIZE}/Recognize",
            request_serializer=recognize_service_pb2.RecognizeRequest.SerializeToString,
            response_deserializer=recognize_service_pb2.RecognizeResponse.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call(recognize_service_pb2.RecognizeRequest(), timeout=5.0)
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert flaky.attempts == 1


async def test_command_line_calls_retry_and_the_throttle_stops_retries_to_a_failing_peer(flaky: Flaky) -> None:
    flaky.failures = 1_000
    counts = []
    async with channel(Target(flaky.address, "token", None)) as cli_channel:
        call = cli_channel.unary_unary(
            f"/{RECOGNIZE}/Recognize",
            request_serializer=recognize_service_pb2.RecognizeRequest.SerializeToString,
            response_deserializer=recognize_service_pb2.RecognizeResponse.FromString,
        )
        for _ in range(8):
            before = flaky.attempts
            with pytest.raises(grpc.aio.AioRpcError):
                await call(recognize_service_pb2.RecognizeRequest(), timeout=10.0)
            counts.append(flaky.attempts - before)
    # The first call is retried in full; after about five failures in a row (half of 10 tokens) gRPC stops retrying.
    assert counts[0] == CALL_ATTEMPTS
    assert counts[-4:] == [1, 1, 1, 1]
    assert sum(counts) < CALL_ATTEMPTS * len(counts)
