"""Helpers for hotlist service tests: authenticated stubs, lists, entries and plate events."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import grpc
import grpc.aio
from google.protobuf import timestamp_pb2

from anpr.api.common.v1 import geo_pb2, image_pb2, plate_event_pb2, plate_pb2
from anpr.api.hotlist.v1 import hotlist_pb2, hotlist_service_pb2, hotlist_service_pb2_grpc
from anpr.runtime.server import ServiceServer

T = TypeVar("T")


class Caller:
    """A stub plus the metadata of one role's token."""

    def __init__(self, stub: hotlist_service_pb2_grpc.HotlistServiceAsyncStub, token: str) -> None:
        self.stub = stub
        self.metadata = (("authorization", f"Bearer {token}"),)


@asynccontextmanager
async def channel_to(server: ServiceServer) -> AsyncIterator[grpc.aio.Channel]:
    """An insecure channel to an in-process server."""
    async with grpc.aio.insecure_channel(server.address) as channel:
        yield channel


def caller(channel: grpc.aio.Channel, token: str) -> Caller:
    """A stub that authenticates with ``token``."""
    return Caller(hotlist_service_pb2_grpc.HotlistServiceStub(channel), token)


async def create_list(admin: Caller, name: str, **fields: object) -> hotlist_pb2.Hotlist:
    """Create an active list (extra Hotlist fields as keyword arguments)."""
    reply = await admin.stub.CreateHotlist(
        hotlist_service_pb2.CreateHotlistRequest(hotlist=hotlist_pb2.Hotlist(name=name, active=True, **fields)),  # type: ignore[arg-type]
        metadata=admin.metadata,
    )
    return reply.hotlist


async def add_plates(admin: Caller, name: str, *targets: str) -> None:
    """Upsert plates (or patterns, when they contain a wildcard) into a list."""
    entries = [
        hotlist_pb2.HotlistEntry(pattern=t, reason="test")
        if ("*" in t or "?" in t)
        else hotlist_pb2.HotlistEntry(plate=t, reason="test")
        for t in targets
    ]
    await admin.stub.UpsertEntries(
        hotlist_service_pb2.UpsertEntriesRequest(hotlist_name=name, entries=entries), metadata=admin.metadata
    )


def ts(moment: datetime) -> timestamp_pb2.Timestamp:
    """A Timestamp of a datetime."""
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(moment)
    return message


def plate_event(
    text: str,
    *,
    event_id: str | None = None,
    revision: int = 1,
    camera_id: str = "cam-1",
    seen: datetime | None = None,
    alternatives: tuple[str, ...] = (),
    confidence: float = 0.95,
    crop: bytes = b"",
    lat_lon: tuple[float, float] | None = None,
) -> plate_event_pb2.PlateEvent:
    """A plate event as ingest would send it."""
    moment = seen or datetime.now(UTC)
    event = plate_event_pb2.PlateEvent(
        event_id=str(uuid.uuid4()) if event_id is None else event_id,
        revision=revision,
        stage=plate_event_pb2.PLATE_EVENT_STAGE_FINAL,
        camera_id=camera_id,
        reading=plate_pb2.PlateReading(
            text=text,
            confidence=confidence,
            alternatives=[plate_pb2.AlternativeReading(text=a, confidence=0.5) for a in alternatives],
        ),
        first_seen_time=ts(moment - timedelta(seconds=1)),
        last_seen_time=ts(moment),
        frame_count=5,
    )
    if crop:
        event.best_crop.CopyFrom(image_pb2.EncodedImage(data=crop, encoding=image_pb2.IMAGE_ENCODING_JPEG))
    if lat_lon is not None:
        event.location.position.CopyFrom(geo_pb2.GeoPoint(latitude=lat_lon[0], longitude=lat_lon[1]))
    return event


async def eventually(check: Callable[[], Awaitable[T | None]], within: float = 5.0, interval: float = 0.02) -> T:
    """Poll ``check`` until it returns something truthy, or fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(interval)
