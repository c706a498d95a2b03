"""Issue 19: streams are bounded per caller and closed when their client goes quiet, on real servers."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import grpc
import grpc.aio

from anpr.api.common.v1 import image_pb2
from anpr.api.hotlist.v1 import hotlist_service_pb2 as hotlist_pb
from anpr.api.hotlist.v1 import import_pb2
from anpr.api.recognize.v1 import recognition_pb2, recognize_service_pb2, recognize_service_pb2_grpc
from anpr.hotlist.access import ACCESS_POLICY as HOTLIST_POLICY
from anpr.hotlist.access import SERVICE_NAME as HOTLIST_SERVICE
from anpr.recognize.access import ACCESS_POLICY as RECOGNIZE_POLICY
from anpr.recognize.access import SERVICE_NAME as RECOGNIZE_SERVICE
from anpr.runtime.auth import Role
from testkit.hotlist import caller, channel_to, create_list
from testkit.plate_models import encode, plate_frame
from testkit.services import StartService


def _roles(policy: Mapping[str, frozenset[Role]], service: str, method: str) -> list[str]:
    return sorted(policy[f"/{service}/{method}"])


def _bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


async def test_streams_per_caller_are_limited_and_idle_request_streams_closed(
    start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service("recognize", max_streams_per_principal="5", stream_idle_timeout_seconds="1")
    first, second = _roles(RECOGNIZE_POLICY, RECOGNIZE_SERVICE, "StreamRecognize")[:2]
    frame = encode(plate_frame("CA123456", (1280, 720), (400, 300, 256, 64)))
    request = recognize_service_pb2.StreamRecognizeRequest(
        image=recognition_pb2.ImageInput(image_id="x", image=image_pb2.EncodedImage(data=frame))
    )
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = recognize_service_pb2_grpc.RecognizeServiceStub(channel)
        # Before: 2,500 idle streams of one client were all held open for 60 s.
        idle = [stub.StreamRecognize(metadata=_bearer(tokens[first])) for _ in range(25)]  # type: ignore[call-arg]
        await asyncio.sleep(0.5)
        refused = [call for call in idle if call.done()]
        assert len(refused) == 20
        assert {await call.code() for call in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        # Another caller is not affected by the first one's streams, and unary calls are not counted.
        other = stub.StreamRecognize(iter([request]), metadata=_bearer(tokens[second]))
        assert [reply.result.plates[0].reading.text async for reply in other] == ["CA123456"]
        unary = await stub.Recognize(
            recognize_service_pb2.RecognizeRequest(images=[request.image]), metadata=_bearer(tokens[first])
        )
        assert unary.results[0].plates
        # The quiet streams are closed after the idle timeout, which frees the caller's slots.
        open_ones = [call for call in idle if not call.done()]
        codes = await asyncio.wait_for(asyncio.gather(*(call.code() for call in open_ones)), 10)
        assert set(codes) == {grpc.StatusCode.DEADLINE_EXCEEDED}
        assert "no message from the client" in (await open_ones[0].details() or "")
        # A stream that keeps sending is not idle, however long it lasts.
        busy = stub.StreamRecognize(metadata=_bearer(tokens[first]))  # type: ignore[call-arg]
        for _ in range(3):
            await busy.write(request)
            reply = await busy.read()
            assert isinstance(reply, recognize_service_pb2.StreamRecognizeResponse)
            assert reply.result.plates[0].reading.text == "CA123456"
            await asyncio.sleep(0.6)
        await busy.done_writing()
        assert await busy.code() == grpc.StatusCode.OK


async def test_idle_imports_are_closed_and_alert_subscriptions_only_counted(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service(
        "hotlist",
        database_url=database_url,
        max_streams_per_principal="3",
        stream_idle_timeout_seconds="0.5",
        subscriber_heartbeat_seconds="0.2",
    )
    async with channel_to(server) as channel:
        admin = caller(channel, tokens[_roles(HOTLIST_POLICY, HOTLIST_SERVICE, "ImportEntries")[0]])
        await create_list(admin, "stolen")
        importing = admin.stub.ImportEntries(metadata=admin.metadata)  # type: ignore[call-arg]
        await importing.write(hotlist_pb.ImportEntriesRequest(header=import_pb2.ImportHeader(hotlist_name="stolen")))
        assert await asyncio.wait_for(importing.code(), 10) == grpc.StatusCode.DEADLINE_EXCEEDED

        operator = caller(channel, tokens[_roles(HOTLIST_POLICY, HOTLIST_SERVICE, "SubscribeAlerts")[0]])
        subscriptions = [
            operator.stub.SubscribeAlerts(hotlist_pb.SubscribeAlertsRequest(), metadata=operator.metadata)
            for _ in range(4)
        ]
        await asyncio.sleep(1.5)  # three idle timeouts: server streams are long-lived on purpose
        done = [call for call in subscriptions if call.done()]
        assert len(done) == 1
        assert await done[0].code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        live = [call for call in subscriptions if not call.done()]
        for call in live:
            assert isinstance(await call.read(), hotlist_pb.SubscribeAlertsResponse)  # heartbeats go on
            call.cancel()
