"""POPIA: audited searches with a purpose, the audit log for auditors, and the retention job."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import grpc.aio
import pytest
from google.protobuf import duration_pb2

from anpr.api.common.v1 import geo_pb2, paging_pb2, time_range_pb2
from anpr.api.hotlist.v1 import audit_pb2
from anpr.api.hotlist.v1 import hotlist_service_pb2 as pb
from testkit.hotlist import add_plates, caller, channel_to, create_list, eventually, plate_event, ts
from testkit.scrape import fetch_text
from testkit.services import StartService

NOW = datetime.now(UTC)  # for reads placed days back; the search window is taken when a test runs


@functools.cache
def last_day() -> time_range_pb2.TimeRange:
    """The day up to ten minutes after the first search of the run (not after import: the suite runs long)."""
    now = datetime.now(UTC)
    return time_range_pb2.TimeRange(start_time=ts(now - timedelta(days=1)), end_time=ts(now + timedelta(minutes=10)))


CAPE_TOWN = (-33.92, 18.42)
PRETORIA = (-25.75, 28.19)


def search(**fields: object) -> pb.SearchReadsRequest:
    values: dict[str, object] = {"purpose": "Investigation of hijacking", "time_range": last_day()}
    values.update(fields)
    return pb.SearchReadsRequest(**values)  # type: ignore[arg-type]


async def test_every_search_needs_a_purpose_and_is_audited(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service("hotlist", database_url=database_url)
    async with channel_to(server) as channel:
        admin, ingest = caller(channel, tokens["hotlist-admin"]), caller(channel, tokens["ingest-service"])
        investigator, auditor = caller(channel, tokens["investigator"]), caller(channel, tokens["auditor"])
        await create_list(admin, "stolen")
        await add_plates(admin, "stolen", "GP111")
        events = [
            plate_event("CA123456", camera_id="cam-1", lat_lon=CAPE_TOWN, crop=b"crop"),
            plate_event("CA12345G", camera_id="cam-2", lat_lon=CAPE_TOWN, alternatives=("CA123456",)),
            plate_event("GP111", camera_id="cam-3", lat_lon=PRETORIA),
            plate_event("XX999", camera_id="cam-3", seen=NOW - timedelta(days=3)),
        ]
        await ingest.stub.ReportReads(pb.ReportReadsRequest(events=events), metadata=ingest.metadata)

        async def found(request: pb.SearchReadsRequest) -> list[str]:
            reply = await investigator.stub.SearchReads(request, metadata=investigator.metadata)
            assert reply.audit_id
            return sorted(r.event.reading.text for r in reply.reads)

        assert await found(search(plate_pattern="CA 123-456")) == ["CA123456"]
        assert await found(search(plate_pattern="CA123456", ocr_tolerant=True)) == ["CA123456", "CA12345G"]
        assert await found(search(plate_pattern="CA1*")) == ["CA123456", "CA12345G"]
        assert await found(search(camera_ids=["cam-3"])) == ["GP111"]  # XX999 is outside the time range
        assert await found(search(plate_pattern="GP1??", hits_only=True)) == ["GP111"]
        circle = geo_pb2.GeoArea(
            circle=geo_pb2.GeoCircle(center=geo_pb2.GeoPoint(latitude=-33.9, longitude=18.4), radius_meters=10_000)
        )
        assert await found(search(area=circle)) == ["CA123456", "CA12345G"]
        rectangle = geo_pb2.GeoArea(
            rectangle=geo_pb2.GeoRectangle(
                south_west=geo_pb2.GeoPoint(latitude=-26, longitude=28),
                north_east=geo_pb2.GeoPoint(latitude=-25, longitude=29),
            )
        )
        assert await found(search(area=rectangle)) == ["GP111"]
        triangle = geo_pb2.GeoArea(
            polygon=geo_pb2.GeoPolygon(
                vertices=[
                    geo_pb2.GeoPoint(latitude=-34.5, longitude=18.0),
                    geo_pb2.GeoPoint(latitude=-33.5, longitude=18.0),
                    geo_pb2.GeoPoint(latitude=-34.0, longitude=19.0),
                ]
            )
        )
        assert await found(search(area=triangle)) == ["CA123456", "CA12345G"]

        page = await investigator.stub.SearchReads(
            search(plate_pattern="CA1*", page=paging_pb2.PageRequest(page_size=1), include_plate_crops=True),
            metadata=investigator.metadata,
        )
        assert len(page.reads) == 1
        assert page.page.next_page_token
        assert page.reads[0].HasField("purge_time")
        rest = await investigator.stub.SearchReads(
            search(
                plate_pattern="CA1*", page=paging_pb2.PageRequest(page_size=1, page_token=page.page.next_page_token)
            ),
            metadata=investigator.metadata,
        )
        assert len(rest.reads) == 1
        assert rest.reads[0].event.event_id != page.reads[0].event.event_id
        searches = 10

        hostile = "'; DROP TABLE hotlist.reads; --"
        assert await found(search(purpose=hostile, plate_pattern="CA123456")) == ["CA123456"]
        searches += 1

        refused = [
            (search(purpose="  "), grpc.StatusCode.INVALID_ARGUMENT),
            (pb.SearchReadsRequest(purpose="x", plate_pattern="CA1"), grpc.StatusCode.INVALID_ARGUMENT),
            (search(), grpc.StatusCode.INVALID_ARGUMENT),  # no plate, camera or area
            (search(plate_pattern="CA%"), grpc.StatusCode.INVALID_ARGUMENT),
            (search(plate_pattern="*"), grpc.StatusCode.INVALID_ARGUMENT),
            (
                search(plate_pattern="CA1*", page=paging_pb2.PageRequest(page_token=page.page.next_page_token + "x")),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
            (
                search(plate_pattern="GP*", page=paging_pb2.PageRequest(page_token=page.page.next_page_token)),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
        ]
        for request, code in refused:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await investigator.stub.SearchReads(request, metadata=investigator.metadata)
            assert error.value.code() == code
        operator = caller(channel, tokens["operator"])
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await operator.stub.SearchReads(search(plate_pattern="CA1"), metadata=operator.metadata)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED

        trail = await auditor.stub.GetAuditLog(
            pb.GetAuditLogRequest(
                actions=[audit_pb2.AUDIT_ACTION_READS_SEARCHED], page=paging_pb2.PageRequest(page_size=100)
            ),
            metadata=auditor.metadata,
        )
        assert len(trail.records) == searches
        assert all(r.actor == "test-investigator" and r.actor_roles == ["investigator"] for r in trail.records)
        assert trail.records[0].purpose == hostile  # newest first, stored verbatim
        assert trail.records[1].details.fields["filters"].struct_value.fields["plate_pattern"].string_value == "CA1*"
        assert trail.records[0].request_id

        # Reading the trail is itself audited, and the trail pages.
        reads = await auditor.stub.GetAuditLog(
            pb.GetAuditLogRequest(actions=[audit_pb2.AUDIT_ACTION_AUDIT_LOG_READ], actor="test-auditor"),
            metadata=auditor.metadata,
        )
        assert len(reads.records) == 1
        first_page = await auditor.stub.GetAuditLog(
            pb.GetAuditLogRequest(page=paging_pb2.PageRequest(page_size=2)), metadata=auditor.metadata
        )
        assert len(first_page.records) == 2
        assert first_page.page.next_page_token
        with pytest.raises(grpc.aio.AioRpcError) as bad_action:
            await auditor.stub.GetAuditLog(
                pb.GetAuditLogRequest(actions=[audit_pb2.AuditAction.ValueType(99)]), metadata=auditor.metadata
            )
        assert bad_action.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_retention_purges_in_batches_by_age_and_hits(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service(
        "hotlist",
        database_url=database_url,
        retention_reads_without_hits_days="1",
        retention_reads_with_hits_days="10",
        retention_interval_seconds="0.2",
        retention_batch_size="2",
    )
    async with channel_to(server) as channel:
        admin, ingest = caller(channel, tokens["hotlist-admin"]), caller(channel, tokens["ingest-service"])
        await create_list(admin, "stolen", alert_suppression_window=duration_pb2.Duration(seconds=0))
        await add_plates(admin, "stolen", "GP111")
        events = [
            *(plate_event(f"OLD{i}", event_id=f"old-{i}", seen=NOW - timedelta(days=2)) for i in range(5)),
            plate_event("NEW1", event_id="new"),
            plate_event("GP111", event_id="hit-recent", seen=NOW - timedelta(days=2)),
            plate_event("GP111", event_id="hit-old", seen=NOW - timedelta(days=20)),
        ]
        await ingest.stub.ReportReads(pb.ReportReadsRequest(events=events), metadata=ingest.metadata)

    connection = await asyncpg.connect(database_url)
    try:

        async def remaining() -> list[str] | None:
            rows = await connection.fetch("SELECT event_id FROM hotlist.reads ORDER BY event_id")
            ids = [row["event_id"] for row in rows]
            return ids if ids == ["hit-recent", "new"] else None

        await eventually(remaining, within=5)
        assert await connection.fetchval("SELECT count(*) FROM hotlist.alerts") == 1
        purged = await connection.fetch("SELECT details FROM hotlist.audit_log WHERE action = 'RETENTION_PURGED'")
        assert purged
        assert all(row["details"] for row in purged)
    finally:
        await connection.close()
    text = await fetch_text(f"http://127.0.0.1:{server.metrics_port}/metrics")
    assert 'anpr_hotlist_retention_deleted_total{kind="reads_without_hits"}' in text
    assert "anpr_hotlist_retention_run_seconds_count" in text
