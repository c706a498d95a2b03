"""SubscribeAlerts across replicas: replay then live under concurrent writes, slow subscribers, consistency."""

from __future__ import annotations

import asyncio
import base64
import time

import grpc
import grpc.aio
import pytest
from google.protobuf import duration_pb2

from anpr.api.common.v1 import plate_pb2
from anpr.api.hotlist.v1 import alert_pb2, hotlist_pb2
from anpr.api.hotlist.v1 import hotlist_service_pb2 as pb
from testkit.hotlist import Caller, add_plates, caller, channel_to, create_list, eventually, plate_event
from testkit.services import StartService

NO_SUPPRESSION = duration_pb2.Duration(seconds=0)


async def _report(ingest: Caller, count: int, prefix: str, plate: str = "CA123456", crop: bytes = b"") -> None:
    for i in range(count):
        await ingest.stub.ReportReads(
            pb.ReportReadsRequest(events=[plate_event(plate, event_id=f"{prefix}-{i}", crop=crop)]),
            metadata=ingest.metadata,
        )


async def _collect(
    operator: Caller, request: pb.SubscribeAlertsRequest, wanted: int, within: float = 20.0
) -> list[pb.SubscribeAlertsResponse]:
    """Messages carrying alerts until ``wanted`` of them arrived."""
    got: list[pb.SubscribeAlertsResponse] = []
    call = operator.stub.SubscribeAlerts(request, metadata=operator.metadata)
    try:
        async with asyncio.timeout(within):
            async for message in call:
                if message.HasField("update"):
                    got.append(message)
                    if len(got) >= wanted:
                        break
    finally:
        call.cancel()
    return got


async def _read(
    call: grpc.aio.UnaryStreamCall[pb.SubscribeAlertsRequest, pb.SubscribeAlertsResponse],
) -> pb.SubscribeAlertsResponse | None:
    message = await call.read()
    return message if isinstance(message, pb.SubscribeAlertsResponse) else None  # None at the end of the stream


async def _drain(
    call: grpc.aio.UnaryStreamCall[pb.SubscribeAlertsRequest, pb.SubscribeAlertsResponse], delivered: list[int]
) -> None:
    while (message := await _read(call)) is not None:
        if message.HasField("update"):
            delivered.append(1)


def _position(cursor: str) -> int:
    return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split(":")[1])


async def test_replay_then_live_without_gap_or_duplicate_across_replicas(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    first = await start_service("hotlist", database_url=database_url)
    second = await start_service("hotlist", database_url=database_url)
    async with channel_to(first) as channel_a, channel_to(second) as channel_b:
        admin = caller(channel_a, tokens["hotlist-admin"])
        await create_list(admin, "stolen", alert_suppression_window=NO_SUPPRESSION)
        await add_plates(admin, "stolen", "CA123456")
        ingest_a, ingest_b = caller(channel_a, tokens["ingest-service"]), caller(channel_b, tokens["ingest-service"])
        operator_a, operator_b = caller(channel_a, tokens["operator"]), caller(channel_b, tokens["operator"])

        await _report(ingest_a, 10, "before")  # replayed
        per_writer = 15
        writers = asyncio.gather(
            _report(ingest_a, per_writer, "a"), _report(ingest_b, per_writer, "b"), _report(ingest_a, per_writer, "c")
        )
        total = 10 + 3 * per_writer
        earliest = pb.SubscribeAlertsRequest(start=pb.ALERT_STREAM_START_EARLIEST)
        # Subscribe while the writers run, so the switch from replay to live happens under concurrent commits.
        on_a, on_b, _ = await asyncio.gather(
            _collect(operator_a, earliest, total), _collect(operator_b, earliest, total), writers
        )
        for messages in (on_a, on_b):
            events = [m.update.alert.event.event_id for m in messages]
            assert len(events) == len(set(events)) == total
            positions = [_position(m.cursor) for m in messages]
            assert positions == sorted(positions)
            assert len(set(positions)) == total
        assert [m.update.alert.alert_id for m in on_a] == [m.update.alert.alert_id for m in on_b]

        # Resuming after the 20th cursor on the other replica yields exactly the rest, in the same order.
        resumed = await _collect(operator_b, pb.SubscribeAlertsRequest(after_cursor=on_a[19].cursor), total - 20)
        assert [m.update.alert.alert_id for m in resumed] == [m.update.alert.alert_id for m in on_a[20:]]


async def test_filters_updates_and_bad_cursors(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service("hotlist", database_url=database_url, subscriber_heartbeat_seconds="0.2")
    async with channel_to(server) as channel:
        admin, ingest, operator = (caller(channel, tokens[r]) for r in ("hotlist-admin", "ingest-service", "operator"))
        await create_list(admin, "high", priority=90, alert_suppression_window=NO_SUPPRESSION)
        await create_list(admin, "low", priority=10, alert_suppression_window=NO_SUPPRESSION)
        await add_plates(admin, "high", "HI111")
        await add_plates(admin, "low", "LO222")
        await _report(ingest, 2, "h", plate="HI111")
        await _report(ingest, 2, "l", plate="LO222")
        high = await _collect(
            operator, pb.SubscribeAlertsRequest(start=pb.ALERT_STREAM_START_EARLIEST, min_priority=50), 2
        )
        assert {m.update.alert.hit.hotlist_name for m in high} == {"high"}
        by_camera = await _collect(
            operator,
            pb.SubscribeAlertsRequest(
                start=pb.ALERT_STREAM_START_EARLIEST, hotlist_names=["low"], camera_ids=["cam-1"]
            ),
            2,
        )
        assert {m.update.alert.hit.hotlist_name for m in by_camera} == {"low"}

        # Acknowledgements appear as updates for subscribers that ask for them.
        alert_id = high[0].update.alert.alert_id
        await operator.stub.AcknowledgeAlert(
            pb.AcknowledgeAlertRequest(alert_id=alert_id, outcome=alert_pb2.ALERT_OUTCOME_CONFIRMED),
            metadata=operator.metadata,
        )
        updates = await _collect(
            operator, pb.SubscribeAlertsRequest(start=pb.ALERT_STREAM_START_EARLIEST, include_updates=True), 5
        )
        assert [m.update.change for m in updates][-1] == pb.ALERT_CHANGE_ACKNOWLEDGED

        # A live subscription with nothing new gets heartbeats whose cursor resumes without skipping.
        call = operator.stub.SubscribeAlerts(pb.SubscribeAlertsRequest(), metadata=operator.metadata)
        first = await _read(call)
        assert first is not None
        assert first.HasField("heartbeat")
        assert first.heartbeat.live
        call.cancel()

        for cursor, code in [
            (base64.urlsafe_b64encode(b"alerts:999999").decode(), grpc.StatusCode.OUT_OF_RANGE),
            ("not a cursor", grpc.StatusCode.INVALID_ARGUMENT),
        ]:
            stream = operator.stub.SubscribeAlerts(
                pb.SubscribeAlertsRequest(after_cursor=cursor), metadata=operator.metadata
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stream.read()
            assert refused.value.code() == code


async def test_slow_subscriber_is_cut_off_with_resource_exhausted(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service("hotlist", database_url=database_url, subscriber_queue_size="10")
    # Without BDP probing the client's receive window stays small, so a subscriber that stops reading backs up fast.
    async with grpc.aio.insecure_channel(server.address, options=[("grpc.http2.bdp_probe", 0)]) as channel:
        admin, ingest, operator = (caller(channel, tokens[r]) for r in ("hotlist-admin", "ingest-service", "operator"))
        await create_list(admin, "stolen", alert_suppression_window=NO_SUPPRESSION)
        await add_plates(admin, "stolen", "CA123456")
        call = operator.stub.SubscribeAlerts(
            pb.SubscribeAlertsRequest(include_plate_crops=True), metadata=operator.metadata
        )
        subscribed = await _read(call)
        assert subscribed is not None
        assert subscribed.heartbeat.live  # subscribed and live; now stop reading
        await _report(ingest, 60, "flood", crop=b"\xff" * 8000)  # 8 kB crops fill the transport window quickly
        delivered: list[int] = []
        with pytest.raises(grpc.aio.AioRpcError) as cut_off:
            await asyncio.wait_for(_drain(call, delivered), 10)
        assert cut_off.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert 0 < len(delivered) < 60
        # Others are unaffected: a fresh subscription replays everything.
        everything = await _collect(operator, pb.SubscribeAlertsRequest(start=pb.ALERT_STREAM_START_EARLIEST), 60)
        assert len(everything) == 60


async def test_stop_ends_alert_streams_at_once_with_unavailable(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    # The grace is long (30 s) and subscribers never hang up: the stop must end their streams, not wait them out.
    server = await start_service("hotlist", database_url=database_url, shutdown_grace_seconds="30")
    async with grpc.aio.insecure_channel(server.address) as channel:
        operator = caller(channel, tokens["operator"])
        calls = [
            operator.stub.SubscribeAlerts(pb.SubscribeAlertsRequest(), metadata=operator.metadata) for _ in range(3)
        ]
        for call in calls:
            subscribed = await _read(call)
            assert subscribed is not None
            assert subscribed.heartbeat.live
        await asyncio.wait_for(server.stop(), timeout=15)
        codes = []
        for call in calls:
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                await _drain(call, [])
            codes.append(ended.value.code())
    assert codes == [grpc.StatusCode.UNAVAILABLE] * 3


async def test_entry_added_on_one_replica_matches_on_another_within_a_second(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    first = await start_service("hotlist", database_url=database_url)
    second = await start_service("hotlist", database_url=database_url, index_poll_seconds="3600")  # notify only
    async with channel_to(first) as channel_a, channel_to(second) as channel_b:
        admin_a = caller(channel_a, tokens["hotlist-admin"])
        operator_b = caller(channel_b, tokens["operator"])
        request = pb.MatchRequest(reading=plate_pb2.PlateReading(text="CA777777"))

        async def hits_on_b() -> int:
            return len((await operator_b.stub.Match(request, metadata=operator_b.metadata)).hits)

        await create_list(admin_a, "stolen")
        started = time.monotonic()
        await add_plates(admin_a, "stolen", "CA777777")
        await eventually(hits_on_b, within=1.0)
        assert time.monotonic() - started < 1.0

        # Deleting and deactivating propagate too.
        await admin_a.stub.DeleteEntries(
            pb.DeleteEntriesRequest(hotlist_name="stolen", targets=["CA777777"]), metadata=admin_a.metadata
        )

        async def no_hits_on_b() -> bool:
            return await hits_on_b() == 0

        await eventually(no_hits_on_b, within=1.0)
        await add_plates(admin_a, "stolen", "CA777777")
        await eventually(hits_on_b, within=1.0)
        await admin_a.stub.DeleteHotlist(pb.DeleteHotlistRequest(name="stolen"), metadata=admin_a.metadata)
        await eventually(no_hits_on_b, within=1.0)
        assert hotlist_pb2.MATCH_STRICTNESS_STANDARD  # contract constant used by servers' default strictness
