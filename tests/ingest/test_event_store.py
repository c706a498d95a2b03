"""Stored plate events on a real PostgreSQL: latest revision wins, paging newest first, retention."""

from __future__ import annotations

import time
import uuid
from importlib.resources import files

import asyncpg
import pytest

from anpr.api.common.v1 import plate_event_pb2, plate_pb2
from anpr.api.ingest.v1 import event_pb2
from anpr.ingest.convert import timestamp
from anpr.ingest.event_store import EventStore
from anpr.runtime.audit_chain import chain_head, first_broken_row
from anpr.runtime.errors import InvalidArgument
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

        first, token, _ = await store.list(2, "", [], None, "", [], False, PURPOSE, "")
        assert [r.event.event_id for r in first] == [b, a]
        assert first[1].event.reading.text == "CA222222"
        assert [r.delivery_state for r in first] == [
            event_pb2.DELIVERY_STATE_DELIVERED,
            event_pb2.DELIVERY_STATE_PENDING,
        ]
        rest, last_token, _ = await store.list(2, token, [], None, "", [], False, PURPOSE, "")
        assert [r.event.event_id for r in rest] == [old]
        assert last_token == ""

        assert await store.purge(7 * 86_400) == 1
        remaining, _, _ = await store.list(10, "", [], None, "", [], False, PURPOSE, "")
        assert {r.event.event_id for r in remaining} == {a, b}
    finally:
        await pool.close()


PURPOSE = "Delivery fault on camera N1-04"


async def test_every_lookup_states_a_purpose_and_leaves_a_chained_audit_row(database_url: str) -> None:
    """Issue 19: GetPlateEvents had no purpose and no audit row, and its plate filter dropped `%` and matched all."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        await migrate(pool, "ingest", files("anpr.ingest") / "migrations")
        store = EventStore(pool)
        now = time.time()
        await store.save([event(str(uuid.uuid4()), 1, "CA222222", now), event(str(uuid.uuid4()), 1, "CA3", now)])
        for purpose in ("", ".", "\u200b", "\u200b" * 20, "ab", "a\u202eb", "x" * 1001):
            with pytest.raises(InvalidArgument):
                await store.list(10, "", [], None, "", [], False, purpose, "")
        for plate in ("%", "*", "'", "CA%", "CA_2", "C*", "\u00b2", "A" * 17):
            with pytest.raises(InvalidArgument):
                await store.list(10, "", [], None, plate, [], False, PURPOSE, "")
        found, _, audit_id = await store.list(10, "", [], None, "ca 222-222", [], False, f"  {PURPOSE} ", "CAS 12/3")
        assert [r.event.reading.text for r in found] == ["CA222222"]
        async with pool.acquire() as connection:
            row = await connection.fetchrow("SELECT * FROM ingest.audit_log WHERE audit_id = $1", audit_id)
            assert row is not None
            assert row["action"] == "PLATE_EVENTS_READ"
            assert (row["purpose"], row["case_reference"]) == (PURPOSE, "CAS 12/3")
            assert '"plate": "CA222222"' in row["details"]
            assert await first_broken_row(connection, "ingest") is None
            head = await chain_head(connection, "ingest")
            assert head.position == 1
            assert head.row_hash == bytes(row["row_hash"]).hex()
    finally:
        await pool.close()


@pytest.mark.parametrize("schema", ["ingest", "hotlist"])
async def test_audit_trail_refuses_changes_and_detects_tampering(database_url: str, schema: str) -> None:
    """Issue 19: TRUNCATE passed the append-only trigger; an owner could edit rows with the trigger disabled."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        await migrate(pool, schema, files(f"anpr.{schema}") / "migrations")
        async with pool.acquire() as connection:
            for purpose in ("first lookup", "second lookup", "third lookup"):
                await connection.execute(
                    f"INSERT INTO {schema}.audit_log (actor, action, purpose, row_hash) VALUES ('a', 'X', $1, 'x')",
                    purpose,
                )
            assert await first_broken_row(connection, schema) is None
            for statement in (
                f"TRUNCATE {schema}.audit_log",
                f"DELETE FROM {schema}.audit_log",
                f"UPDATE {schema}.audit_log SET purpose = 'other'",
            ):
                with pytest.raises(asyncpg.RaiseError, match="append-only"):
                    await connection.execute(statement)
            ids = [r["audit_id"] for r in await connection.fetch(f"SELECT audit_id FROM {schema}.audit_log")]
            # An owner (here the test's superuser) disables the trigger and edits a row: the chain shows where.
            await connection.execute(f"ALTER TABLE {schema}.audit_log DISABLE TRIGGER audit_log_no_update")
            await connection.execute(
                f"UPDATE {schema}.audit_log SET purpose = 'nothing to see' WHERE audit_id = $1", ids[1]
            )
            assert await first_broken_row(connection, schema) == ids[1]
            await connection.execute(
                f"UPDATE {schema}.audit_log SET purpose = 'second lookup' WHERE audit_id = $1", ids[1]
            )
            assert await first_broken_row(connection, schema) is None
            await connection.execute(f"DELETE FROM {schema}.audit_log WHERE audit_id = $1", ids[0])
            assert await first_broken_row(connection, schema) == ids[1]
    finally:
        await pool.close()
