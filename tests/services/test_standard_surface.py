"""Every service answers health checks and reflection without credentials, exports metrics, and enforces auth."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from testkit.scrape import fetch_text_containing
from testkit.services import StartService

SERVICES = {
    "ingest": ("anpr.ingest.v1.IngestService", "ListCameras"),
    "recognize": ("anpr.recognize.v1.RecognizeService", "GetModelInfo"),
    "hotlist": ("anpr.hotlist.v1.HotlistService", "ListHotlists"),
}
# A role each method refuses, and one it accepts.
REFUSED_ROLE = {"ingest": "auditor", "recognize": "investigator", "hotlist": "camera"}
ACCEPTED_ROLE = {"ingest": "operator", "recognize": "ingest-service", "hotlist": "hotlist-admin"}

pytestmark = pytest.mark.parametrize("name", sorted(SERVICES))


def _raw_unary(channel: grpc.aio.Channel, full_method: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
    # An empty request message is valid for every proto3 request type, so auth can be exercised on any method.
    return channel.unary_unary(full_method, request_serializer=lambda b: b, response_deserializer=lambda b: b)


async def _code_of(call: grpc.aio.UnaryUnaryCall[bytes, bytes]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_health_reports_serving_for_overall_and_service(name: str, start_service: StartService) -> None:
    server = await start_service(name)
    service_name, _ = SERVICES[name]
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for target in ("", service_name):
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=target))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_reflection_lists_the_service(name: str, start_service: StartService) -> None:
    server = await start_service(name)
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        replies = [reply async for reply in stub.ServerReflectionInfo(iter([request]))]
    listed = {service.name for service in replies[0].list_services_response.service}
    assert SERVICES[name][0] in listed
    assert "grpc.health.v1.Health" in listed


async def test_auth_rejects_missing_unknown_and_wrong_role(
    name: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service(name)
    service_name, method = SERVICES[name]
    async with grpc.aio.insecure_channel(server.address) as channel:
        call = _raw_unary(channel, f"/{service_name}/{method}")
        cases: list[tuple[str | None, grpc.StatusCode]] = [
            (None, grpc.StatusCode.UNAUTHENTICATED),
            (tokens["nobody"], grpc.StatusCode.UNAUTHENTICATED),
            (tokens[REFUSED_ROLE[name]], grpc.StatusCode.PERMISSION_DENIED),
        ]
        for token, expected in cases:
            metadata = () if token is None else (("authorization", f"Bearer {token}"),)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call(b"", metadata=metadata)
            assert refused.value.code() == expected, token
        # The accepted role gets past authentication: whatever the method answers, it is not an auth error.
        metadata = (("authorization", f"Bearer {tokens[ACCEPTED_ROLE[name]]}"),)
        assert await _code_of(call(b"", metadata=metadata)) not in (
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.PERMISSION_DENIED,
        )


async def test_metrics_endpoint_counts_calls_by_code(name: str, start_service: StartService) -> None:
    server = await start_service(name)
    service_name, method = SERVICES[name]
    async with grpc.aio.insecure_channel(server.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await _raw_unary(channel, f"/{service_name}/{method}")(b"")
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    expected = (
        f'grpc_server_handled_total{{grpc_code="UNAUTHENTICATED",grpc_method="{method}",'
        f'grpc_service="{service_name}",grpc_type="unary"}}'
    )
    text = await fetch_text_containing(url, expected)
    assert "grpc_server_handling_seconds_bucket" in text
    assert f'anpr_build_info{{service="{name}"' in text
