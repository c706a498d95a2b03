"""Log lines of a real RPC, read as JSON: request id, trace and span ids, and a UTC timestamp with its zone."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Iterator

import grpc
import grpc.aio
import pytest

from anpr.runtime import tracing
from anpr.runtime.logs import configure_logging, utc_timestamp
from anpr.runtime.server import ServiceServer
from anpr.runtime.settings import load_settings
from testkit.otlp import otlp_receiver
from testkit.probe_service import SERVICE, ProbeSettings, make_server

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
UTC_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging replaces the root handlers (pytest's own among them): put them back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


@pytest.fixture
async def traced_probe(service_environment: dict[str, str]) -> AsyncIterator[ServiceServer]:
    with otlp_receiver() as receiver:
        tracing.configure("probe", receiver.endpoint, 1.0)
        server = make_server(load_settings(ProbeSettings, environ={}, **service_environment))
        await server.start()
        try:
            yield server
        finally:
            await server.stop(0.5)
            tracing.shutdown()


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def test_log_lines_of_a_call_carry_its_ids_and_a_utc_time(
    traced_probe: ServiceServer,
    tokens: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    configure_logging("probe", "DEBUG", "json")
    metadata = (
        ("authorization", f"Bearer {tokens['operator']}"),
        ("x-request-id", "req-log-1"),
        ("traceparent", TRACEPARENT),
    )
    async with grpc.aio.insecure_channel(traced_probe.address) as channel:
        call = channel.unary_unary(f"/{SERVICE}/Fail", request_serializer=bytes, response_deserializer=bytes)
        with pytest.raises(grpc.aio.AioRpcError):
            await call(b"crash", metadata=metadata)
    lines = [line for line in _lines(capsys.readouterr().err) if line.get("request_id") == "req-log-1"]
    messages = {str(line["message"]) for line in lines}
    assert "rpc finished" in messages
    assert any(m.startswith("unhandled error") for m in messages)
    for line in lines:
        assert line["service"] == "probe"
        assert line["trace_id"] == TRACE_ID
        assert re.fullmatch(r"[0-9a-f]{16}", str(line["span_id"]))
        assert UTC_ISO.fullmatch(str(line["time"])), line["time"]
    assert len({line["span_id"] for line in lines}) == 1  # all inside the call's one server span


def test_outside_a_call_the_ids_are_empty_and_the_time_still_utc(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    configure_logging("probe", "INFO", "json")
    logging.getLogger("anpr.test").info("between calls", extra={"events": 3})
    (line,) = _lines(capsys.readouterr().err)
    assert (line["message"], line["events"]) == ("between calls", 3)
    assert (line["request_id"], line["trace_id"], line["span_id"]) == (None, None, None)
    assert UTC_ISO.fullmatch(str(line["time"]))


def test_utc_timestamp_format() -> None:
    assert utc_timestamp(1_796_601_599.1234) == "2026-12-06T23:59:59.123Z"
