"""Every cause of UNKNOWN/INTERNAL that fuzzing found (issue 19), as a request and the status code it must get."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.message import Message

from anpr.api.common.v1 import paging_pb2, time_range_pb2
from anpr.api.hotlist.v1 import alert_pb2, hotlist_pb2, import_pb2
from anpr.api.hotlist.v1 import hotlist_service_pb2 as hotlist_pb
from anpr.api.ingest.v1 import camera_pb2
from anpr.api.ingest.v1 import ingest_service_pb2 as ingest_pb
from anpr.runtime.errors import InvalidArgument
from anpr.runtime.page_tokens import PageTokens
from anpr.runtime.server import ServiceServer
from testkit.fuzz_targets import access_policy, seed
from testkit.hotlist import caller, plate_event
from testkit.services import StartService

INVALID = grpc.StatusCode.INVALID_ARGUMENT
HOTLIST = "/anpr.hotlist.v1.HotlistService/"
INGEST = "/anpr.ingest.v1.IngestService/"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _old_style_token(position: object, filters: object) -> str:
    """A token as the unsigned scheme made them: anyone could compute the filters' digest."""
    digest = hashlib.sha256(json.dumps(filters, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return _b64(json.dumps({"p": position, "f": digest}).encode())


def _hotlist(**fields: object) -> hotlist_pb.CreateHotlistRequest:
    return hotlist_pb.CreateHotlistRequest(hotlist=hotlist_pb2.Hotlist(**fields))  # type: ignore[arg-type]


def _camera(camera_id: str = "cam-9", **fields: object) -> ingest_pb.RegisterCameraRequest:
    camera = camera_pb2.Camera(camera_id=camera_id, kind=camera_pb2.CAMERA_KIND_MOBILE, **fields)  # type: ignore[arg-type]
    return ingest_pb.RegisterCameraRequest(camera=camera)


def _page(token: str) -> paging_pb2.PageRequest:
    return paging_pb2.PageRequest(page_token=token)


NESTED = _b64(b"[" * 100_000)
FAR = timestamp_pb2.Timestamp(seconds=2**62)

HOTLIST_CASES: list[tuple[str, str, Message, grpc.StatusCode]] = [
    (
        "timestamp out of range",
        "UpsertEntries",
        hotlist_pb.UpsertEntriesRequest(
            hotlist_name="l", entries=[hotlist_pb2.HotlistEntry(plate="CA999999", expire_time=FAR)]
        ),
        INVALID,
    ),
    (
        "timestamp nanos out of range",
        "GetAuditLog",
        hotlist_pb.GetAuditLogRequest(
            time_range=time_range_pb2.TimeRange(start_time=timestamp_pb2.Timestamp(nanos=-1))
        ),
        INVALID,
    ),
    (
        "duration out of range",
        "CreateHotlist",
        _hotlist(name="d", alert_suppression_window=duration_pb2.Duration(seconds=10**15)),
        INVALID,
    ),
    (
        "duration with mixed signs",
        "CreateHotlist",
        _hotlist(name="d", default_entry_ttl=duration_pb2.Duration(seconds=5, nanos=-1)),
        INVALID,
    ),
    ("NUL in text", "CreateHotlist", _hotlist(name="n", display_name="a\x00b"), INVALID),
    (
        "NUL in an entry",
        "UpsertEntries",
        hotlist_pb.UpsertEntriesRequest(
            hotlist_name="l", entries=[hotlist_pb2.HotlistEntry(plate="CA999999", reason="\x00")]
        ),
        INVALID,
    ),
    ("name with a trailing newline", "CreateHotlist", _hotlist(name="x\n"), INVALID),
    (
        "superscript digit as an entry id",
        "DeleteEntries",
        hotlist_pb.DeleteEntriesRequest(hotlist_name="l", entry_ids=["²"]),
        INVALID,
    ),
    (
        "4,301-digit entry id",
        "DeleteEntries",
        hotlist_pb.DeleteEntriesRequest(hotlist_name="l", entry_ids=["1" * 4301]),
        INVALID,
    ),
    (
        "superscript digit as an alert id",
        "AcknowledgeAlert",
        hotlist_pb.AcknowledgeAlertRequest(alert_id="²", outcome=alert_pb2.ALERT_OUTCOME_CONFIRMED),
        grpc.StatusCode.NOT_FOUND,
    ),
    (
        "4,301-digit alert id",
        "AcknowledgeAlert",
        hotlist_pb.AcknowledgeAlertRequest(alert_id="1" * 4301, outcome=alert_pb2.ALERT_OUTCOME_CONFIRMED),
        grpc.StatusCode.NOT_FOUND,
    ),
    ("deeply nested JSON page token", "ListHotlists", hotlist_pb.ListHotlistsRequest(page=_page(NESTED)), INVALID),
    (
        "forged page token",
        "ListHotlists",
        hotlist_pb.ListHotlistsRequest(page=_page(_old_style_token("a", [False]))),
        INVALID,
    ),
    (
        "forged page token of another type",
        "GetAuditLog",
        hotlist_pb.GetAuditLogRequest(page=_page(_old_style_token("x", ["", "", [], ""]))),
        INVALID,
    ),
    ("unknown enum value", "CreateHotlist", _hotlist(name="e", strictness=99), INVALID),
]

INGEST_CASES: list[tuple[str, str, Message, grpc.StatusCode]] = [
    ("NUL in text", "RegisterCamera", _camera(display_name="a\x00"), INVALID),
    ("control character in a label", "RegisterCamera", _camera(labels={"k": "\x1b[2J"}), INVALID),
    ("uint64 above int64", "RegisterCamera", _camera(limits=camera_pb2.CameraLimits(max_frame_bytes=2**63)), INVALID),
    (
        "uint64 ids above int64",
        "PurgeDeadLetters",
        ingest_pb.PurgeDeadLettersRequest(dead_letter_ids=[2**64 - 1]),
        INVALID,
    ),
    ("id with a leading dash", "RegisterCamera", _camera("-cam"), INVALID),
    ("id with a trailing newline", "RegisterCamera", _camera("cam-9\n"), INVALID),
    (
        "timestamp out of range",
        "GetPlateEvents",
        ingest_pb.GetPlateEventsRequest(time_range=time_range_pb2.TimeRange(end_time=FAR)),
        INVALID,
    ),
    ("deeply nested JSON page token", "ListCameras", ingest_pb.ListCamerasRequest(page=_page(NESTED)), INVALID),
    (
        "forged page token",
        "ListCameras",
        ingest_pb.ListCamerasRequest(page=_page(_old_style_token("zzz", [[], "", False]))),
        INVALID,
    ),
    (
        "forged dead-letter page token",
        "ListDeadLetters",
        ingest_pb.ListDeadLettersRequest(page=_page(_old_style_token("x", [False]))),
        INVALID,
    ),
]


def _ids(table: Sequence[tuple[str, str, Message, grpc.StatusCode]]) -> list[str]:
    return [row[0] for row in table]


async def _started(service: str, start_service: StartService, database_url: str, tokens: dict[str, str]) -> str:
    server: ServiceServer = await start_service(service, database_url=database_url)
    async with grpc.aio.insecure_channel(server.address) as channel:
        await seed(service, channel, tokens)
    return server.address


async def _call(address: str, path: str, body: bytes, token: str | None) -> grpc.StatusCode:
    metadata = () if token is None else (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            await channel.unary_unary(path, request_serializer=bytes, response_deserializer=bytes)(
                body, metadata=metadata, timeout=10
            )
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


def _token(service: str, path: str, tokens: dict[str, str]) -> str:
    return tokens[sorted(access_policy(service)[path])[0]]


@pytest.mark.parametrize(("cause", "method", "request_message", "expected"), HOTLIST_CASES, ids=_ids(HOTLIST_CASES))
async def test_hotlist_bad_input(
    database_url: str,
    start_service: StartService,
    tokens: dict[str, str],
    cause: str,
    method: str,
    request_message: Message,
    expected: grpc.StatusCode,
) -> None:
    address = await _started("hotlist", start_service, database_url, tokens)
    path = HOTLIST + method
    assert await _call(address, path, request_message.SerializeToString(), _token("hotlist", path, tokens)) == expected


@pytest.mark.parametrize(("cause", "method", "request_message", "expected"), INGEST_CASES, ids=_ids(INGEST_CASES))
async def test_ingest_bad_input(
    database_url: str,
    start_service: StartService,
    tokens: dict[str, str],
    cause: str,
    method: str,
    request_message: Message,
    expected: grpc.StatusCode,
) -> None:
    address = await _started("ingest", start_service, database_url, tokens)
    path = INGEST + method
    assert await _call(address, path, request_message.SerializeToString(), _token("ingest", path, tokens)) == expected


async def test_a_cursor_of_non_ascii_digits_is_invalid(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    address = await _started("hotlist", start_service, database_url, tokens)
    path = HOTLIST + "SubscribeAlerts"
    metadata = (("authorization", f"Bearer {_token('hotlist', path, tokens)}"),)
    for cursor in (_b64("alerts:²".encode()), _b64(b"alerts:" + b"9" * 30), "A" * 5000):
        body = hotlist_pb.SubscribeAlertsRequest(after_cursor=cursor).SerializeToString()
        async with grpc.aio.insecure_channel(address) as channel:
            call = channel.unary_stream(path, request_serializer=bytes, response_deserializer=bytes)(
                body, metadata=metadata, timeout=10
            )
            with pytest.raises(grpc.aio.AioRpcError) as error:
                async for _ in call:
                    pass
        assert error.value.code() == INVALID, cursor[:20]


@pytest.mark.parametrize("service", ["hotlist", "ingest"])
async def test_an_undecodable_unary_body_is_invalid_after_authentication_without_a_traceback(
    service: str,
    database_url: str,
    start_service: StartService,
    tokens: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    address = await _started(service, start_service, database_url, tokens)
    path = (HOTLIST + "CreateHotlist") if service == "hotlist" else (INGEST + "RegisterCamera")
    garbage = b"\xff" * 12
    with caplog.at_level(logging.INFO):
        assert await _call(address, path, garbage, None) == grpc.StatusCode.UNAUTHENTICATED
        assert await _call(address, path, garbage, tokens["nobody"]) == grpc.StatusCode.UNAUTHENTICATED
        assert await _call(address, path, garbage, _token(service, path, tokens)) == INVALID
    noisy = [r for r in caplog.records if r.levelno >= logging.INFO and (r.exc_info or "Traceback" in r.getMessage())]
    assert not noisy, [r.getMessage()[:200] for r in noisy]


async def test_an_undecodable_later_message_of_a_client_stream_is_invalid(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    address = await _started("hotlist", start_service, database_url, tokens)
    path = HOTLIST + "ImportEntries"
    header = hotlist_pb.ImportEntriesRequest(header=import_pb2.ImportHeader(hotlist_name="l")).SerializeToString()
    metadata = (("authorization", f"Bearer {_token('hotlist', path, tokens)}"),)
    async with grpc.aio.insecure_channel(address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await channel.stream_unary(path, request_serializer=bytes, response_deserializer=bytes)(
                iter([header, b"\xff" * 12]), metadata=metadata, timeout=10
            )
    assert error.value.code() == INVALID


async def test_an_undecodable_later_frame_of_a_push_stream_is_invalid(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    address = await _started("ingest", start_service, database_url, tokens)
    path = INGEST + "PushFrames"
    metadata = (("authorization", f"Bearer {_token('ingest', path, tokens)}"),)

    def push() -> grpc.StatusCode:  # blocking client (see testkit.fuzz.send), off the loop the server runs on
        with grpc.insecure_channel(address) as channel:
            rpc: Any = channel  # raw bytes: no serializers
            try:
                for _ in rpc.stream_stream(path)(iter([b"", b"\xff" * 12]), metadata=metadata, timeout=10):
                    pass
            except grpc.RpcError as error:
                return error.code()  # type: ignore[no-any-return, unused-ignore]
        return grpc.StatusCode.OK

    assert await asyncio.to_thread(push) == INVALID


def test_page_tokens_round_trip_and_refuse_forgery_and_other_filters() -> None:
    tokens = PageTokens(b"k" * 32)
    token = tokens.encode(["2026-01-01T00:00:00+00:00", "e1"], {"plate": "CA1*"})
    assert tokens.decode(token, {"plate": "CA1*"}) == ["2026-01-01T00:00:00+00:00", "e1"]
    for bad, filters in (
        (token, {"plate": "GP*"}),  # other filters
        (PageTokens(b"o" * 32).encode("x", {}), {}),  # another key (another replica or process)
        (token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), {"plate": "CA1*"}),  # tampered
        (NESTED, {}),
        ("A" * 3000, {}),
        ("!!!", {}),
    ):
        with pytest.raises(InvalidArgument):
            tokens.decode(bad, filters)


async def test_a_revision_beyond_the_stored_integer_is_rejected_alone(
    start_service: StartService, database_url: str, tokens: dict[str, str]
) -> None:
    # Found by the long fuzz run: revision 4294967295 reached PostgreSQL's int4 and the call failed with INTERNAL.
    server = await start_service("hotlist", database_url=database_url)
    async with grpc.aio.insecure_channel(server.address) as channel:
        reporter = caller(channel, tokens["ingest-service"])
        huge = plate_event("CA123456", event_id="huge")
        huge.revision = 2**32 - 1
        reply = await reporter.stub.ReportReads(
            hotlist_pb.ReportReadsRequest(events=[huge, plate_event("CA654321", event_id="fine")]),
            metadata=reporter.metadata,
        )
    rejected, stored = reply.results
    assert rejected.rejection_message.startswith("revision")
    assert stored.rejection_message == ""
