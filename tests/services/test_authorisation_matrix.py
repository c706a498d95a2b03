"""The authorisation matrix, generated from each service's policy (access.py) and its descriptor.

Every RPC of every service is called against a running server with every role's token, with no token and with an
unknown token. A call must be refused with UNAUTHENTICATED exactly when it carries no known token, with
PERMISSION_DENIED exactly when the policy does not list any of the caller's roles, and otherwise get past
authorisation (an empty request may then fail for other reasons: INVALID_ARGUMENT, NOT_FOUND, ...). Adding an RPC
or changing a policy changes the matrix with it; an RPC missing from a policy fails the first test.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from anpr.api.hotlist.v1 import hotlist_service_pb2
from anpr.api.ingest.v1 import ingest_service_pb2
from anpr.api.recognize.v1 import recognize_service_pb2
from anpr.hotlist.access import ACCESS_POLICY as HOTLIST_POLICY
from anpr.ingest.access import ACCESS_POLICY as INGEST_POLICY
from anpr.recognize.access import ACCESS_POLICY as RECOGNIZE_POLICY
from anpr.runtime.auth import AccessPolicy, Role
from testkit.services import StartService

SERVICES: dict[str, tuple[ServiceDescriptor, AccessPolicy]] = {
    "ingest": (ingest_service_pb2.DESCRIPTOR.services_by_name["IngestService"], INGEST_POLICY),
    "recognize": (recognize_service_pb2.DESCRIPTOR.services_by_name["RecognizeService"], RECOGNIZE_POLICY),
    "hotlist": (hotlist_service_pb2.DESCRIPTOR.services_by_name["HotlistService"], HOTLIST_POLICY),
}
CALLERS = [*(role.value for role in Role), "no token", "unknown token"]
REFUSALS = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


def full_name(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_rpc_has_a_policy_entry_and_every_entry_an_rpc(name: str) -> None:
    descriptor, policy = SERVICES[name]
    assert {full_name(m) for m in descriptor.methods} == set(policy)
    for allowed in policy.values():
        assert allowed, "an RPC no role may call should be removed, not left in the policy"


def expected(policy: AccessPolicy, method: str, caller: str) -> grpc.StatusCode | None:
    """The refusal the policy requires for this caller, or None when the call must pass authorisation."""
    if caller in ("no token", "unknown token"):
        return grpc.StatusCode.UNAUTHENTICATED
    return None if Role(caller) in policy[method] else grpc.StatusCode.PERMISSION_DENIED


async def call(channel: grpc.aio.Channel, method: MethodDescriptor, metadata: tuple[tuple[str, str], ...]) -> Any:
    """Call with an empty request message (valid for every proto3 type); returns the status code."""
    name = full_name(method)
    identity = {"request_serializer": lambda b: b, "response_deserializer": lambda b: b}
    try:
        async with asyncio.timeout(10):
            if method.client_streaming and method.server_streaming:
                bidi = channel.stream_stream(name, **identity)(iter([b""]), metadata=metadata, timeout=5)
                async for _ in bidi:
                    break
                bidi.cancel()
            elif method.client_streaming:
                await channel.stream_unary(name, **identity)(iter([b""]), metadata=metadata, timeout=5)
            elif method.server_streaming:
                stream = channel.unary_stream(name, **identity)(b"", metadata=metadata, timeout=5)
                async for _ in stream:
                    break
                stream.cancel()
            else:
                await channel.unary_unary(name, **identity)(b"", metadata=metadata, timeout=5)
    except grpc.aio.AioRpcError as error:
        return error.code()
    except TimeoutError:
        return grpc.StatusCode.DEADLINE_EXCEEDED  # a stream that waits for events: it got past authorisation
    return grpc.StatusCode.OK


@pytest.mark.parametrize("name", sorted(SERVICES))
async def test_matrix_matches_the_policy(
    name: str, start_service: StartService, tokens: dict[str, str], database_url: str
) -> None:
    descriptor, policy = SERVICES[name]
    overrides: dict[str, str] = {}
    if name in ("ingest", "hotlist"):
        overrides["database_url"] = database_url
    if name == "ingest":
        overrides.update(hotlist_target="dns:///127.0.0.1:9", recognize_target="dns:///127.0.0.1:9")
    server = await start_service(name, **overrides)
    mismatches = []
    async with grpc.aio.insecure_channel(server.address) as channel:
        for method in descriptor.methods:
            for caller in CALLERS:
                token = tokens["nobody"] if caller == "unknown token" else tokens.get(caller)
                metadata = () if caller == "no token" else (("authorization", f"Bearer {token}"),)
                code = await call(channel, method, metadata)
                want = expected(policy, full_name(method), caller)
                if (want is not None and code != want) or (want is None and code in REFUSALS):
                    mismatches.append(f"{method.name} as {caller}: got {code.name}, policy says {want or 'allowed'}")
    assert not mismatches, "\n".join(mismatches)
