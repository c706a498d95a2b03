"""The call pipeline on a real server: error boundary, request ids, caller identity."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest

from anpr.runtime.server import ServiceServer
from anpr.runtime.settings import load_settings
from testkit.probe_service import SERVICE, ProbeSettings, make_server


@pytest.fixture
async def probe(service_environment: dict[str, str]) -> AsyncIterator[ServiceServer]:
    server = make_server(load_settings(ProbeSettings, environ={}, **service_environment))
    await server.start()
    yield server
    await server.stop(0.5)


def _call(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
    return channel.unary_unary(f"/{SERVICE}/{method}", request_serializer=bytes, response_deserializer=bytes)


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        ("InvalidArgument", grpc.StatusCode.INVALID_ARGUMENT),
        ("NotFound", grpc.StatusCode.NOT_FOUND),
        ("AlreadyExists", grpc.StatusCode.ALREADY_EXISTS),
        ("FailedPrecondition", grpc.StatusCode.FAILED_PRECONDITION),
        ("ResourceExhausted", grpc.StatusCode.RESOURCE_EXHAUSTED),
        ("Unavailable", grpc.StatusCode.UNAVAILABLE),
        ("PermissionDenied", grpc.StatusCode.PERMISSION_DENIED),
    ],
)
async def test_domain_exceptions_become_status_codes(
    probe: ServiceServer, tokens: dict[str, str], raised: str, expected: grpc.StatusCode
) -> None:
    async with grpc.aio.insecure_channel(probe.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await _call(channel, "Fail")(raised.encode(), metadata=(("authorization", f"Bearer {tokens['operator']}"),))
    assert error.value.code() == expected
    assert error.value.details() == f"probe raised {raised}"


async def test_unexpected_exception_is_internal_and_names_the_request_id(
    probe: ServiceServer, tokens: dict[str, str]
) -> None:
    metadata = (("authorization", f"Bearer {tokens['operator']}"), ("x-request-id", "req-123"))
    async with grpc.aio.insecure_channel(probe.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await _call(channel, "Fail")(b"crash", metadata=metadata)
    assert error.value.code() == grpc.StatusCode.INTERNAL
    assert "req-123" in (error.value.details() or "")
    assert "unexpected bug" not in (error.value.details() or "")  # internals are logged, not sent


async def test_request_id_and_principal_reach_the_handler(probe: ServiceServer, tokens: dict[str, str]) -> None:
    async with grpc.aio.insecure_channel(probe.address) as channel:
        call = _call(channel, "WhoAmI")(
            b"", metadata=(("authorization", f"Bearer {tokens['auditor']}"), ("x-request-id", "abc-42"))
        )
        assert await call == b"test-auditor abc-42"
        assert ("x-request-id", "abc-42") in tuple(await call.trailing_metadata() or ())
        # Without (or with a malformed or overlong) request id the server makes one and returns it: the id goes
        # into logs and audit rows (issue 19).
        for given in ("bad id with spaces", "x" * 65, "id;DROP"):
            call = _call(channel, "WhoAmI")(
                b"", metadata=(("authorization", f"Bearer {tokens['auditor']}"), ("x-request-id", given))
            )
            identity, generated = (await call).decode().split()
            assert identity == "test-auditor"
            assert len(generated) == 32
            assert ("x-request-id", generated) in tuple(await call.trailing_metadata() or ())


async def test_bearer_scheme_is_required(probe: ServiceServer, tokens: dict[str, str]) -> None:
    async with grpc.aio.insecure_channel(probe.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await _call(channel, "WhoAmI")(b"", metadata=(("authorization", tokens["operator"]),))
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_stop_is_safe_to_call_twice(service_environment: dict[str, str]) -> None:
    server = make_server(load_settings(ProbeSettings, environ={}, **service_environment))
    await server.start()
    await server.stop(0.1)
    await server.stop(0.1)
