"""Stored plate events on a real PostgreSQL: latest revision wins, paging newest first, retention."""

from __future__ import annotations

import time
import uuid
from importlib.resources import files

import asyncpg

from anpr.api.common.v1 import plate_event_pb2, plate_pb2
from anpr.api.ingest.v1 import event_pb2
from anpr.ingest.convert import timestamp
from anpr.ingest.event_store import EventStore
from anpr.runtime.migrations import migrate


def event(event_id: str, revision: int, plate: str, last_seen: float) -> plate_event_pb2.PlateEvent:
    return plate_event_pb2.PlateEvent(
        event_id=event_id,
        revision=revision,
        camera_id="cam-1",
        reading=plate_pb2.PlateReading(text=plate),
        first_seen_time=timestamp(last_seen - 1),
        last_seen_time=timestamp(last_seen),
    )


async def test_revisions_paging_delivery_state_and_retention(database_url: str) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        await migrate(pool, "ingest", files("anpr.ingest") / "migrations")
        store = EventStore(pool)
        now = time.time()
        old, a, b = (str(uuid.uuid4()) for _ in range(3))
        await store.save([event(a, 2, "CA222222", now - 10), event(b, 1, "CA333333", now - 5)])
        await store.save([event(a, 1, "CA111111", now - 20)])  # a late, older revision changes nothing
        await store.save([event(old, 1, "CA000000", now - 10 * 86_400)])
        await store.mark_delivered([(b, 1)])

        first, token = await store.list(2, "", [], None, "", [], False)
        assert [r.event.event_id for r in first] == [b, a]
        assert first[1].event.reading.text == "CA222222"
        assert [r.delivery_state for r in first] == [
            event_pb2.DELIVERY_STATE_DELIVERED,
            event_pb2.DELIVERY_STATE_PENDING,
        ]
        rest, last_token = await store.list(2, token, [], None, "", [], False)
        assert [r.event.event_id for r in rest] == [old]
        assert last_token == ""

        assert await store.purge(7 * 86_400) == 1
        remaining, _ = await store.list(10, "", [], None, "", [], False)
        assert {r.event.event_id for r in remaining} == {a, b}
    finally:
        await pool.close()
