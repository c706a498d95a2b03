"""Dead letters are an alarm, not a bin: per-event refusals, a gauge, list / replay / purge RPCs, retention."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import grpc.aio
import pytest

from anpr.api.common.v1 import plate_event_pb2
from anpr.api.common.v1.paging_pb2 import PageRequest
from anpr.api.ingest.v1 import ingest_service_pb2 as pb
from anpr.ingest.spool import Spool
from testkit.hotlist import plate_event
from testkit.ingest_env import IngestEnvironment, metric_value, stub
from testkit.polling import wait_until_async
from testkit.scrape import fetch_text


def event(text: str, number: int, **fields: object) -> plate_event_pb2.PlateEvent:
    seen = datetime.now(UTC) - timedelta(minutes=5)
    return plate_event(text, event_id=f"00000000-0000-4000-8000-{number:012d}", seen=seen, **fields)  # type: ignore[arg-type]


async def spool_before_start(env: IngestEnvironment, waiting: list[plate_event_pb2.PlateEvent], dead: int = 0) -> None:
    """Events left in the spool file by an earlier ingest (older version); the last ``dead`` of them already
    set aside as dead letters (refused by an older hotlist service)."""
    spool = Spool(env.spool_path)
    await spool.open()
    try:
        await spool.append([(e.event_id, e.revision, e.SerializeToString()) for e in waiting])
        for entry in (await spool.peek(len(waiting)))[len(waiting) - dead :]:
            await spool.dead_letter(entry, "INVALID_ARGUMENT: refused by an older hotlist service")
    finally:
        await spool.close()


PURPOSE = "Hotlist refused events after an upgrade"


async def dead_letter_lookups(database_url: str) -> list[tuple[str, str]]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT action, purpose FROM ingest.audit_log WHERE target_type = 'dead_letters' ORDER BY audit_id"
        )
    finally:
        await connection.close()
    return [(row["action"], row["purpose"]) for row in rows]


async def gauge(port: int) -> float:
    return metric_value(await fetch_text(f"http://127.0.0.1:{port}/metrics"), "anpr_ingest_dead_letters")


async def test_refused_events_are_dead_letters_to_list_replay_and_purge(env: IngestEnvironment) -> None:
    too_short = event("C", 1)  # what an older ingest emitted: hotlist refuses it
    bad_gps = event("CA222222", 2, lat_lon=(123.0, 18.4))  # refused whole before; now only the fix is dropped
    good = event("CA111111", 3)
    refused_before = event("CA333333", 4)
    await spool_before_start(env, [too_short, bad_gps, good, refused_before], dead=1)
    server = await env.start_ingest()
    admin = env.metadata("ingest-admin")
    async with grpc.aio.insecure_channel(server.address) as channel:
        ingest = stub(channel)
        # The batch is judged event by event: the good ones are stored, only the bad one is set aside.
        reads = await env.wait_for_count(2)
        assert sorted(r.plate for r in reads) == ["CA111111", "CA222222"]
        assert not next(r for r in reads if r.plate == "CA222222").event.HasField("location")

        async def two_dead_letters() -> bool:
            reply = await ingest.ListDeadLetters(pb.ListDeadLettersRequest(purpose=PURPOSE), metadata=admin)
            return len(reply.dead_letters) == 2

        await wait_until_async(two_dead_letters)
        assert await gauge(server.metrics_port) == 2

        # They hold plate reads: a lookup states its purpose and leaves an audit row.
        with pytest.raises(grpc.aio.AioRpcError) as no_purpose:
            await ingest.ListDeadLetters(pb.ListDeadLettersRequest(), metadata=admin)
        assert no_purpose.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        audited = await dead_letter_lookups(env.database_url)
        assert audited
        assert all(row == ("DEAD_LETTERS_READ", PURPOSE) for row in audited)

        first = await ingest.ListDeadLetters(
            pb.ListDeadLettersRequest(purpose=PURPOSE, page=PageRequest(page_size=1)), metadata=admin
        )
        assert first.page.total_size == 2
        second = await ingest.ListDeadLetters(
            pb.ListDeadLettersRequest(
                purpose=PURPOSE, page=PageRequest(page_size=1, page_token=first.page.next_page_token)
            ),
            metadata=admin,
        )
        assert not second.page.next_page_token
        # Oldest first by their place in the spool.
        (refused,), (older,) = first.dead_letters, second.dead_letters
        assert older.event.event_id == refused_before.event_id
        assert refused.event.event_id == too_short.event_id
        assert refused.reason.startswith("REJECTED: reading.text")
        assert refused.dead_time.seconds > time.time() - 60

        # Plate events (text and crops): only roles that may read events may see or move them.
        for role in ("camera", "investigator", "hotlist-admin", "auditor"):
            metadata = env.metadata(role)
            for call in (
                ingest.ListDeadLetters(pb.ListDeadLettersRequest(purpose=PURPOSE), metadata=metadata),
                ingest.ReplayDeadLetters(pb.ReplayDeadLettersRequest(all=True), metadata=metadata),
                ingest.PurgeDeadLetters(pb.PurgeDeadLettersRequest(all=True), metadata=metadata),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as denied:
                    await call
                assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        for ambiguous in (pb.ReplayDeadLettersRequest(), pb.ReplayDeadLettersRequest(dead_letter_ids=[1], all=True)):
            with pytest.raises(grpc.aio.AioRpcError) as invalid:
                await ingest.ReplayDeadLetters(ambiguous, metadata=admin)
            assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        # The hotlist service was upgraded meanwhile: the replayed event is accepted.
        replay = pb.ReplayDeadLettersRequest(dead_letter_ids=[older.dead_letter_id, 999_999])
        assert (await ingest.ReplayDeadLetters(replay, metadata=admin)).replayed_count == 1
        reads = await env.wait_for_count(3)
        assert "CA333333" in {r.plate for r in reads}
        assert await gauge(server.metrics_port) == 1

        purge = pb.PurgeDeadLettersRequest(dead_letter_ids=[refused.dead_letter_id])
        assert (await ingest.PurgeDeadLetters(purge, metadata=admin)).purged_count == 1
        left = await ingest.ListDeadLetters(pb.ListDeadLettersRequest(purpose=PURPOSE), metadata=admin)
        assert list(left.dead_letters) == []
        assert await gauge(server.metrics_port) == 0


async def test_dead_letters_are_purged_by_retention(env: IngestEnvironment) -> None:
    await spool_before_start(env, [event("CA444444", 5, crop=b"\xff\xd8jpeg")], dead=1)
    async with env.run_ingest() as server, grpc.aio.insecure_channel(server.address) as channel:
        listed = await stub(channel).ListDeadLetters(
            pb.ListDeadLettersRequest(purpose=PURPOSE, include_plate_crops=True), metadata=env.metadata("ingest-admin")
        )
        assert [d.event.best_crop.data for d in listed.dead_letters] == [b"\xff\xd8jpeg"]
    # Retention runs when ingest starts (and hourly): letters older than the setting go, crops with them.
    async with (
        env.run_ingest(dead_letter_retention_seconds="0.001") as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):

        async def purged() -> bool:
            reply = await stub(channel).ListDeadLetters(
                pb.ListDeadLettersRequest(purpose=PURPOSE), metadata=env.metadata("ingest-admin")
            )
            return not reply.dead_letters

        await wait_until_async(purged)
        assert await gauge(server.metrics_port) == 0
