"""Hotlists and entries through a real server: life cycle, paging, bad input, nothing half-written."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest
from google.protobuf import field_mask_pb2

from anpr.api.common.v1 import paging_pb2, plate_pb2
from anpr.api.hotlist.v1 import hotlist_pb2
from anpr.api.hotlist.v1 import hotlist_service_pb2 as pb
from testkit.hotlist import add_plates, caller, channel_to, create_list
from testkit.services import StartService


async def test_list_life_cycle_and_entries(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service("hotlist", database_url=database_url)
    async with channel_to(server) as channel:
        admin = caller(channel, tokens["hotlist-admin"])
        operator = caller(channel, tokens["operator"])
        created = await create_list(admin, "saps-stolen", priority=80, display_name="SAPS stolen vehicles")
        assert created.created_by == "test-hotlist-admin"
        assert created.priority == 80
        await add_plates(admin, "saps-stolen", "ca 123-456", "GP*99")
        upsert = await admin.stub.UpsertEntries(
            pb.UpsertEntriesRequest(
                hotlist_name="saps-stolen",
                entries=[
                    hotlist_pb2.HotlistEntry(
                        plate="CA123456", reason="stolen", vehicle=hotlist_pb2.VehicleDescription(make="Toyota")
                    )
                ],
            ),
            metadata=admin.metadata,
        )
        assert (upsert.created_count, upsert.updated_count) == (0, 1)
        assert upsert.entries[0].vehicle.make == "Toyota"
        assert upsert.entries[0].added_by == "test-hotlist-admin"

        got = await admin.stub.GetHotlist(pb.GetHotlistRequest(name="saps-stolen"), metadata=admin.metadata)
        assert got.hotlist.entry_count == 2

        listed = await admin.stub.ListEntries(
            pb.ListEntriesRequest(hotlist_name="saps-stolen", page=paging_pb2.PageRequest(page_size=1)),
            metadata=admin.metadata,
        )
        assert [e.plate for e in listed.entries] == ["CA123456"]
        assert listed.page.next_page_token
        second = await admin.stub.ListEntries(
            pb.ListEntriesRequest(
                hotlist_name="saps-stolen",
                page=paging_pb2.PageRequest(page_size=1, page_token=listed.page.next_page_token),
            ),
            metadata=admin.metadata,
        )
        assert [e.pattern for e in second.entries] == ["GP*99"]
        assert not second.page.next_page_token

        # Deactivating the list stops matching at once; reactivating brings it back.
        match = pb.MatchRequest(reading=plate_pb2.PlateReading(text="CA123456"))
        assert len((await operator.stub.Match(match, metadata=operator.metadata)).hits) == 1
        await admin.stub.UpdateHotlist(
            pb.UpdateHotlistRequest(
                hotlist=hotlist_pb2.Hotlist(name="saps-stolen", active=False),
                update_mask=field_mask_pb2.FieldMask(paths=["active"]),
            ),
            metadata=admin.metadata,
        )
        assert len((await operator.stub.Match(match, metadata=operator.metadata)).hits) == 0
        active = await admin.stub.ListHotlists(pb.ListHotlistsRequest(), metadata=admin.metadata)
        assert active.hotlists == []
        everything = await admin.stub.ListHotlists(
            pb.ListHotlistsRequest(include_inactive=True), metadata=admin.metadata
        )
        assert [h.name for h in everything.hotlists] == ["saps-stolen"]

        deleted = await admin.stub.DeleteEntries(
            pb.DeleteEntriesRequest(hotlist_name="saps-stolen", targets=["GP*99"]), metadata=admin.metadata
        )
        assert deleted.deleted_count == 1
        gone = await admin.stub.DeleteHotlist(pb.DeleteHotlistRequest(name="saps-stolen"), metadata=admin.metadata)
        assert gone.deleted_entry_count == 1
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await admin.stub.GetHotlist(pb.GetHotlistRequest(name="saps-stolen"), metadata=admin.metadata)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND

        auditor = caller(channel, tokens["auditor"])
        trail = await auditor.stub.GetAuditLog(
            pb.GetAuditLogRequest(target_id="saps-stolen"), metadata=auditor.metadata
        )
        actions = [r.action for r in trail.records]
        assert actions[::-1] == [1, 4, 4, 2, 5, 3]  # created, upserted x2, updated, entries deleted, deleted
        assert all(r.actor == "test-hotlist-admin" for r in trail.records)


BAD_UPSERTS = [
    ("no-such-list", [hotlist_pb2.HotlistEntry(plate="CA123456")], grpc.StatusCode.NOT_FOUND),
    ("l", [hotlist_pb2.HotlistEntry(plate="CA'; DROP TABLE hotlist.entries;--")], grpc.StatusCode.INVALID_ARGUMENT),
    ("l", [hotlist_pb2.HotlistEntry(pattern="*")], grpc.StatusCode.INVALID_ARGUMENT),
    ("l", [hotlist_pb2.HotlistEntry()], grpc.StatusCode.INVALID_ARGUMENT),
    ("l", [hotlist_pb2.HotlistEntry(plate="CA1", reason="x" * 5000)], grpc.StatusCode.INVALID_ARGUMENT),
    ("l", [hotlist_pb2.HotlistEntry(plate="CA1", reason="nul\x00byte")], grpc.StatusCode.INVALID_ARGUMENT),
    (
        "l",
        [hotlist_pb2.HotlistEntry(plate="CA1"), hotlist_pb2.HotlistEntry(plate="CA 1")],
        grpc.StatusCode.INVALID_ARGUMENT,
    ),
    ("l", [hotlist_pb2.HotlistEntry(plate=f"CA{i}") for i in range(11)], grpc.StatusCode.INVALID_ARGUMENT),
    ("Bad Name!", [hotlist_pb2.HotlistEntry(plate="CA1")], grpc.StatusCode.INVALID_ARGUMENT),
]


async def test_bad_input_is_refused_and_nothing_is_half_written(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service("hotlist", database_url=database_url, max_upsert_batch="10")
    async with channel_to(server) as channel:
        admin = caller(channel, tokens["hotlist-admin"])
        operator = caller(channel, tokens["operator"])
        await create_list(admin, "l")
        for name, entries, code in BAD_UPSERTS:
            # A valid entry goes first: the failing call must not keep it.
            request = pb.UpsertEntriesRequest(
                hotlist_name=name, entries=[hotlist_pb2.HotlistEntry(plate="GOOD1"), *entries]
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await admin.stub.UpsertEntries(request, metadata=admin.metadata)
            assert refused.value.code() == code, (name, entries)
            assert "DROP" not in (refused.value.details() or "")
        listed = await admin.stub.ListEntries(pb.ListEntriesRequest(hotlist_name="l"), metadata=admin.metadata)
        assert list(listed.entries) == []

        bad_lists = [
            (hotlist_pb2.Hotlist(name="l"), grpc.StatusCode.ALREADY_EXISTS),
            (hotlist_pb2.Hotlist(name=""), grpc.StatusCode.INVALID_ARGUMENT),
            (hotlist_pb2.Hotlist(name="x", priority=101), grpc.StatusCode.INVALID_ARGUMENT),
            (hotlist_pb2.Hotlist(name="x", min_match_score=1.5), grpc.StatusCode.INVALID_ARGUMENT),
            (hotlist_pb2.Hotlist(name="x", display_name="y" * 500), grpc.StatusCode.INVALID_ARGUMENT),
        ]
        for hotlist, code in bad_lists:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await admin.stub.CreateHotlist(pb.CreateHotlistRequest(hotlist=hotlist), metadata=admin.metadata)
            assert refused.value.code() == code

        update_cases = [
            (["name"], grpc.StatusCode.INVALID_ARGUMENT),
            ([], grpc.StatusCode.INVALID_ARGUMENT),
            (["priority"], grpc.StatusCode.INVALID_ARGUMENT),  # priority 200 below
        ]
        for paths, code in update_cases:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await admin.stub.UpdateHotlist(
                    pb.UpdateHotlistRequest(
                        hotlist=hotlist_pb2.Hotlist(name="l", priority=200),
                        update_mask=field_mask_pb2.FieldMask(paths=paths),
                    ),
                    metadata=admin.metadata,
                )
            assert refused.value.code() == code

        match_cases = [
            (pb.MatchRequest(reading=plate_pb2.PlateReading(text="")), grpc.StatusCode.INVALID_ARGUMENT),
            (pb.MatchRequest(reading=plate_pb2.PlateReading(text="CA 12$")), grpc.StatusCode.INVALID_ARGUMENT),
            (
                pb.MatchRequest(reading=plate_pb2.PlateReading(text="CA123"), hotlist_names=["nope"]),
                grpc.StatusCode.NOT_FOUND,
            ),
        ]
        for match_request, code in match_cases:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await operator.stub.Match(match_request, metadata=operator.metadata)
            assert refused.value.code() == code

        with pytest.raises(grpc.aio.AioRpcError) as bad_token:
            await admin.stub.ListEntries(
                pb.ListEntriesRequest(hotlist_name="l", page=paging_pb2.PageRequest(page_token="garbage!")),
                metadata=admin.metadata,
            )
        assert bad_token.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_match_returns_why_and_how_strongly(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service("hotlist", database_url=database_url)
    async with channel_to(server) as channel:
        admin = caller(channel, tokens["hotlist-admin"])
        operator = caller(channel, tokens["operator"])
        await create_list(admin, "strict", strictness=hotlist_pb2.MATCH_STRICTNESS_EXACT, priority=90)
        await create_list(admin, "loose", strictness=hotlist_pb2.MATCH_STRICTNESS_LENIENT, priority=10)
        await add_plates(admin, "strict", "CA123456")
        await add_plates(admin, "loose", "CA123456")
        reading = plate_pb2.PlateReading(text="CA12345G", confidence=1.0)
        hits = (await operator.stub.Match(pb.MatchRequest(reading=reading), metadata=operator.metadata)).hits
        assert [(h.hotlist_name, h.kind) for h in hits] == [("loose", 2)]
        weak = await operator.stub.Match(
            pb.MatchRequest(reading=reading, include_weak_hits=True), metadata=operator.metadata
        )
        assert {(h.hotlist_name, h.meets_strictness) for h in weak.hits} == {("loose", True), ("strict", False)}
        assert all(h.entry.plate == "CA123456" and 0 < h.score < 1 for h in weak.hits)
