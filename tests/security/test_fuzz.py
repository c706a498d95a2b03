"""Short, deterministic fuzzing of every RPC of every service (the long run is ``bench/security/fuzz.py``).

Property (see :mod:`testkit.fuzz`): whatever the request bytes and whoever the caller, no call ends in UNKNOWN,
INTERNAL or DATA_LOSS, none hangs, and the server still answers its health check afterwards.
"""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio
import pytest
from hypothesis import HealthCheck, given, settings

from testkit import fuzz
from testkit.fuzz_targets import SERVICES, access_policy, seed
from testkit.services import StartService

# About 7 s per service on a 2-core VM; the fixed seed makes CI runs repeatable.
EXAMPLES = 1000


@pytest.mark.timeout(240)
@pytest.mark.parametrize("service", SERVICES)
async def test_no_request_gets_a_server_fault(
    service: str,
    database_url: str,  # first: the database must outlive the services started on it
    start_service: StartService,
    tokens: dict[str, str],
) -> None:
    overrides = {"database_url": database_url} if service != "recognize" else {}
    server = await start_service(service, **overrides)
    methods = await asyncio.to_thread(fuzz.discover, server.address)
    assert methods, "reflection lists the service's methods"
    fuzz.prepare_images()
    policy = access_policy(service)
    roles = sorted({role for allowed in policy.values() for role in allowed} | {r for r in tokens if r != "nobody"})
    tally = fuzz.Tally()
    async with grpc.aio.insecure_channel(server.address) as seeding:
        await seed(service, seeding, tokens)

    def fuzz_in_thread() -> bool:  # the server keeps serving on this test's event loop meanwhile
        with grpc.insecure_channel(server.address) as channel:

            @settings(
                max_examples=EXAMPLES,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=fuzz.cases(methods, policy, roles))
            def property_holds(case: fuzz.Case) -> None:
                outcome = fuzz.send(channel, case, tokens)
                tally.add(case, outcome)
                assert not outcome.fault, f"{case.method.path} by {case.caller or 'anonymous'}: {outcome}"

            property_holds()
            return fuzz.serving(channel)

    assert await asyncio.to_thread(fuzz_in_thread), f"{service} stopped answering its health check"
    assert tally.cases >= EXAMPLES
    assert len(tally.by_method) == len(methods), "every RPC was called"
