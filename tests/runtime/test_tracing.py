"""Tracing on a real server and a real OTLP receiver: server spans continue the caller's W3C trace context, calls
made inside a batch forward the trace context and the request id, and statuses reach the spans without details."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import grpc
import grpc.aio
import pytest

from anpr.runtime import tracing
from anpr.runtime.interceptors import client_interceptors
from anpr.runtime.server import ServiceServer
from anpr.runtime.settings import load_settings
from testkit.otlp import OtlpReceiver, ReceivedSpan, otlp_receiver
from testkit.probe_service import SERVICE, ProbeSettings, make_server

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
SERVER_KIND = 2  # opentelemetry.proto.trace.v1.Span.SPAN_KIND_SERVER
CLIENT_KIND = 3
STATUS_ERROR = 2


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    """A real OTLP receiver, with this process's tracing exporting to it (every trace sampled)."""
    with otlp_receiver() as running:
        tracing.configure("probe", running.endpoint, 1.0)
        try:
            yield running
        finally:
            tracing.shutdown()


@pytest.fixture
async def probe(receiver: OtlpReceiver, service_environment: dict[str, str]) -> AsyncIterator[ServiceServer]:
    server = make_server(load_settings(ProbeSettings, environ={}, **service_environment))
    await server.start()
    yield server
    await server.stop(0.5)


async def _flushed(receiver: OtlpReceiver) -> list[ReceivedSpan]:
    # The exporter sends from its own thread: flushing must not hold the event loop the probe server runs on.
    await asyncio.to_thread(tracing.shutdown)
    return receiver.spans


def _call(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
    return channel.unary_unary(f"/{SERVICE}/{method}", request_serializer=bytes, response_deserializer=bytes)


async def test_a_server_span_continues_the_callers_traceparent(
    probe: ServiceServer, receiver: OtlpReceiver, tokens: dict[str, str]
) -> None:
    metadata = (("authorization", f"Bearer {tokens['operator']}"), ("traceparent", TRACEPARENT))
    async with grpc.aio.insecure_channel(probe.address) as channel:
        await _call(channel, "WhoAmI")(b"", metadata=metadata)
    spans = [s for s in await _flushed(receiver) if s.name == f"{SERVICE}/WhoAmI"]
    assert len(spans) == 1
    span = spans[0]
    assert (span.trace_id, span.parent_span_id, span.kind) == (TRACE_ID, PARENT_ID, SERVER_KIND)
    assert span.service == "anpr-probe"
    assert span.attributes["rpc.system"] == "grpc"
    assert span.attributes["rpc.method"] == "WhoAmI"
    assert span.attributes["rpc.grpc.status_code"] == 0


async def test_statuses_reach_the_span_without_their_details(
    probe: ServiceServer, receiver: OtlpReceiver, tokens: dict[str, str]
) -> None:
    metadata = (("authorization", f"Bearer {tokens['operator']}"),)
    async with grpc.aio.insecure_channel(probe.address) as channel:
        for request in (b"NotFound", b"crash"):
            with pytest.raises(grpc.aio.AioRpcError):
                await _call(channel, "Fail")(request, metadata=metadata)
    spans = [s for s in await _flushed(receiver) if s.name == f"{SERVICE}/Fail"]
    by_code = {s.attributes["rpc.grpc.status_code"]: s for s in spans}
    assert set(by_code) == {grpc.StatusCode.NOT_FOUND.value[0], grpc.StatusCode.INTERNAL.value[0]}
    # The caller's mistake is not the server's error; a crash is, named by its code only.
    assert by_code[grpc.StatusCode.NOT_FOUND.value[0]].status_code != STATUS_ERROR
    crashed = by_code[grpc.StatusCode.INTERNAL.value[0]]
    assert (crashed.status_code, crashed.status_message) == (STATUS_ERROR, "INTERNAL")
    for span in spans:
        assert "probe raised" not in str(span.attributes)


async def test_calls_in_a_batch_forward_its_trace_and_first_request_id(
    probe: ServiceServer, receiver: OtlpReceiver, tokens: dict[str, str]
) -> None:
    first = tracing.Origin("req-first", None, 0)
    second = tracing.Origin("req-second", None, 0)
    metadata = (("authorization", f"Bearer {tokens['operator']}"),)
    async with grpc.aio.insecure_channel(probe.address, interceptors=client_interceptors()) as channel:
        with tracing.batch_span("test.batch", [first, second], {"anpr.items": 2}):
            call = _call(channel, "WhoAmI")(b"", metadata=metadata)
            assert await call == b"test-operator req-first"
        # Outside any request, nothing is forwarded and the server makes its own id.
        _, generated = (await _call(channel, "WhoAmI")(b"", metadata=metadata)).decode().split()
        assert len(generated) == 32
    spans = await _flushed(receiver)
    batch = next(s for s in spans if s.name == "test.batch")
    client = next(s for s in spans if s.kind == CLIENT_KIND and s.trace_id == batch.trace_id)
    server = next(s for s in spans if s.kind == SERVER_KIND and s.trace_id == batch.trace_id)
    assert batch.parent_span_id == ""  # origins without spans: the batch starts a trace
    assert client.parent_span_id == batch.span_id
    assert server.parent_span_id == client.span_id
    assert batch.attributes == {"anpr.items": 2}


async def test_a_batch_is_a_child_of_its_first_origin_and_links_the_others(receiver: OtlpReceiver) -> None:
    origins = []
    for camera in ("cam-a", "cam-b"):
        with tracing.frame_span(camera, f"{camera}-1") as origin:
            origins.append(origin)
    with tracing.batch_span("test.batch", origins):
        pass
    spans = await _flushed(receiver)
    frames = {s.attributes["anpr.camera_id"]: s for s in spans if s.name == "ingest.frame"}
    batch = next(s for s in spans if s.name == "test.batch")
    assert (batch.trace_id, batch.parent_span_id) == (frames["cam-a"].trace_id, frames["cam-a"].span_id)
    assert batch.links == ((frames["cam-b"].trace_id, frames["cam-b"].span_id),)
    assert frames["cam-a"].trace_id != frames["cam-b"].trace_id  # one trace per frame


async def test_tracing_off_records_nothing_and_still_forwards_request_ids(
    service_environment: dict[str, str], tokens: dict[str, str]
) -> None:
    tracing.shutdown()
    assert not tracing.enabled()
    assert tracing.client_interceptors() == []
    server = make_server(load_settings(ProbeSettings, environ={}, **service_environment))
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address, interceptors=client_interceptors()) as channel:
            with tracing.batch_span("test.batch", [tracing.Origin("req-off")]) as origin:
                assert origin.span is None
                reply = await _call(channel, "WhoAmI")(
                    b"", metadata=(("authorization", f"Bearer {tokens['operator']}"),)
                )
        assert reply == b"test-operator req-off"
    finally:
        await server.stop(0.5)
