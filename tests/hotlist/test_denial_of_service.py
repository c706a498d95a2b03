"""Issue 19, denial of service on the hotlist service: idle imports, many wildcard entries, bounded streams."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import grpc.aio

from anpr.api.common.v1 import plate_pb2, time_range_pb2
from anpr.api.hotlist.v1 import hotlist_pb2, import_pb2
from anpr.api.hotlist.v1 import hotlist_service_pb2 as pb
from anpr.hotlist.access import ACCESS_POLICY, SERVICE_NAME
from testkit.hotlist import Caller, add_plates, caller, channel_to, create_list, plate_event, ts
from testkit.services import StartService


def as_allowed(channel: grpc.aio.Channel, tokens: dict[str, str], method: str) -> Caller:
    """A caller holding a role the access policy allows for ``method`` (whatever the roles are named)."""
    role = sorted(ACCESS_POLICY[f"/{SERVICE_NAME}/{method}"])[0]
    return caller(channel, tokens[role])


def _header(name: str) -> pb.ImportEntriesRequest:
    return pb.ImportEntriesRequest(header=import_pb2.ImportHeader(hotlist_name=name))


def _rows(*plates: str) -> pb.ImportEntriesRequest:
    return pb.ImportEntriesRequest(
        rows=[import_pb2.ImportRow(entry=hotlist_pb2.HotlistEntry(plate=p, reason="test")) for p in plates]
    )


async def test_idle_imports_hold_no_connection_and_other_calls_meet_their_deadlines(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    # Before: each open ImportEntries stream held a pool connection and a transaction; 12 idle imports made
    # ListHotlists, Match, ReportReads and SearchReads miss 5 s deadlines.
    server = await start_service(
        "hotlist", database_url=database_url, database_pool_max_size="4", max_concurrent_imports="3"
    )
    async with channel_to(server) as channel:
        admin = as_allowed(channel, tokens, "ImportEntries")
        await create_list(admin, "stolen")
        await add_plates(admin, "stolen", "GP111")
        idle: list[grpc.aio.StreamUnaryCall[pb.ImportEntriesRequest, pb.ImportEntriesResponse]] = []
        for _ in range(12):
            call = admin.stub.ImportEntries(metadata=admin.metadata)  # type: ignore[call-arg]
            await call.write(_header("stolen"))
            idle.append(call)
        await asyncio.sleep(0.5)
        refused = [call for call in idle if call.done()]
        assert len(refused) == 9  # beyond max_concurrent_imports, at once (on the header)
        assert {await call.code() for call in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        # Rows go only to the imports still running: a write racing the server's refusal fails on the client
        # (grpc's aio client then reports INTERNAL of its own, whatever the server said).
        for call in idle:
            if not call.done():
                await call.write(_rows("CA1000"))

        operator, reporter = as_allowed(channel, tokens, "Match"), as_allowed(channel, tokens, "ReportReads")
        investigator = as_allowed(channel, tokens, "SearchReads")
        now = datetime.now(UTC)
        span = time_range_pb2.TimeRange(start_time=ts(now - timedelta(days=1)), end_time=ts(now + timedelta(hours=1)))
        for _ in range(10):  # more calls than the pool has connections
            await asyncio.gather(
                as_allowed(channel, tokens, "ListHotlists").stub.ListHotlists(
                    pb.ListHotlistsRequest(), metadata=admin.metadata, timeout=5
                ),
                operator.stub.Match(
                    pb.MatchRequest(reading=plate_pb2.PlateReading(text="GP111", confidence=0.9)),
                    metadata=operator.metadata,
                    timeout=5,
                ),
                reporter.stub.ReportReads(
                    pb.ReportReadsRequest(events=[plate_event("GP111")]), metadata=reporter.metadata, timeout=5
                ),
                investigator.stub.SearchReads(
                    pb.SearchReadsRequest(purpose="Investigation of hijacking", time_range=span, plate_pattern="GP111"),
                    metadata=investigator.metadata,
                    timeout=5,
                ),
            )
        # The idle imports still complete once their senders finish.
        running = [call for call in idle if not call.done()]
        for index, call in enumerate(running):
            await call.write(_rows(f"CA2{index:03}"))
            await call.done_writing()
        replies = [await call for call in running]
        assert all(reply.applied for reply in replies)
        listed = await admin.stub.ListEntries(pb.ListEntriesRequest(hotlist_name="stolen"), metadata=admin.metadata)
        assert {e.plate for e in listed.entries} == {"GP111", "CA1000", "CA2000", "CA2001", "CA2002"}
        assert all(isinstance(e, hotlist_pb2.HotlistEntry) for e in listed.entries)


def test_many_wildcard_patterns_are_screened_together_and_still_all_match() -> None:
    # Before: every reading was tested against every pattern one by one (1,000 patterns: ReportReads of 100 events
    # went from 0.04 s to 1.29 s); now one combined screen answers for most readings. Costs are in bench/.
    from anpr.hotlist.matching import IndexedEntry, ListInfo, MatchIndex, MatchKind, MatchRules, Reading, Strictness
    from anpr.hotlist.plates import Folding
    from anpr.hotlist.settings import DEFAULT_CONFUSION_CLASSES

    index = MatchIndex(MatchRules(Folding(DEFAULT_CONFUSION_CLASSES)))
    index.set_list(ListInfo(1, "stolen", 50, True, Strictness.STANDARD, 0.0))
    patterns = [f"CA{n:03}*" for n in range(1000)] + ["GP?12?", "*XYZ9"]
    index.upsert(IndexedEntry(i, 1, p, True) for i, p in enumerate(patterns))
    index.upsert([IndexedEntry(5000, 1, "ND12345", False)])

    def matched(text: str) -> set[str]:
        return {hit.target for hit in index.match([Reading(text)]) if hit.kind is MatchKind.WILDCARD}

    assert matched("CA123456") == {"CA123*"}
    assert matched("GPA12B") == {"GP?12?"}
    assert matched("GPA12BC") == set()  # '?' patterns match one length only
    assert matched("AAXYZ9") == {"*XYZ9"}
    assert matched("XYZ9") == {"*XYZ9"}
    assert matched("CAO12X") == {"CA012*"}  # the folded form: O reads as 0
    assert matched("ND12345") == set()
    index.remove([123])
    assert matched("CA123456") == set()
