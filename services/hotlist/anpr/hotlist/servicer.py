"""``anpr.hotlist.v1.HotlistService``: translates requests to domain calls and results back to responses.

No business rules live here; validation, SQL and matching are in the core modules. Domain exceptions pass
through to the error boundary of the shared runtime, which turns them into status codes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from anpr.api.common.v1 import paging_pb2
from anpr.api.hotlist.v1 import audit_pb2, hotlist_service_pb2, hotlist_service_pb2_grpc, import_pb2
from anpr.api.hotlist.v1 import hotlist_service_pb2 as pb
from anpr.hotlist import alerts, convert
from anpr.hotlist.audit import AuditQuery, read_page
from anpr.hotlist.db import Pool
from anpr.hotlist.hits import Matcher, plate_text, with_details
from anpr.hotlist.importing import Importer, ImportHeader, ImportRow
from anpr.hotlist.lists import HotlistCatalog
from anpr.hotlist.model import entry_target
from anpr.hotlist.paging import page_size
from anpr.hotlist.patterns import is_pattern, normalise_pattern
from anpr.hotlist.plates import normalise_plate
from anpr.hotlist.reads import ReadRecorder, Refused, admit
from anpr.hotlist.search import ReadSearch, SearchQuery
from anpr.hotlist.settings import HotlistSettings
from anpr.hotlist.subscriptions import AlertHub, Filters, encode_cursor
from anpr.runtime.errors import InvalidArgument
from anpr.runtime.validation import parse_number_id

Context = Any  # grpc.aio.ServicerContext; the servicer never uses it (errors are raised, not set)


@dataclass(frozen=True)
class Core:
    """The core objects the servicer delegates to."""

    pool: Pool
    catalog: HotlistCatalog
    importer: Importer
    matcher: Matcher
    recorder: ReadRecorder
    hub: AlertHub
    search: ReadSearch


class HotlistServicer(hotlist_service_pb2_grpc.HotlistServiceServicer):
    """The gRPC face of the hotlist service."""

    def __init__(self, core: Core, settings: HotlistSettings) -> None:
        self._core = core
        self._settings = settings

    def _size(self, page: Any) -> int:
        return page_size(page.page_size, self._settings.default_page_size, self._settings.max_page_size)

    # -- hotlists -----------------------------------------------------------------------------------------------

    async def CreateHotlist(self, request: pb.CreateHotlistRequest, context: Context) -> pb.CreateHotlistResponse:
        hotlist = await self._core.catalog.create(request.hotlist.name, convert.hotlist_fields(request.hotlist))
        return pb.CreateHotlistResponse(hotlist=convert.hotlist_message(hotlist))

    async def GetHotlist(self, request: pb.GetHotlistRequest, context: Context) -> pb.GetHotlistResponse:
        hotlist = await self._core.catalog.get(request.name)
        return pb.GetHotlistResponse(hotlist=convert.hotlist_message(hotlist))

    async def UpdateHotlist(self, request: pb.UpdateHotlistRequest, context: Context) -> pb.UpdateHotlistResponse:
        changes = convert.hotlist_changes(request.hotlist, list(request.update_mask.paths))
        hotlist = await self._core.catalog.update(request.hotlist.name, changes)
        return pb.UpdateHotlistResponse(hotlist=convert.hotlist_message(hotlist))

    async def DeleteHotlist(self, request: pb.DeleteHotlistRequest, context: Context) -> pb.DeleteHotlistResponse:
        deleted = await self._core.catalog.delete(request.name)
        return pb.DeleteHotlistResponse(deleted_entry_count=deleted)

    async def ListHotlists(self, request: pb.ListHotlistsRequest, context: Context) -> pb.ListHotlistsResponse:
        found, token = await self._core.catalog.page(
            request.page.page_token, self._size(request.page), request.include_inactive
        )
        return pb.ListHotlistsResponse(
            hotlists=[convert.hotlist_message(h) for h in found], page=paging_pb2.PageResult(next_page_token=token)
        )

    # -- entries ------------------------------------------------------------------------------------------------

    async def UpsertEntries(self, request: pb.UpsertEntriesRequest, context: Context) -> pb.UpsertEntriesResponse:
        entries = []
        for message in request.entries:
            target, pattern = entry_target(message.plate, message.pattern)
            entries.append(convert.entry_fields(message, target, pattern))
        stored = await self._core.catalog.upsert_entries(request.hotlist_name, entries)
        created = sum(1 for _, new in stored if new)
        return pb.UpsertEntriesResponse(
            entries=[convert.entry_message(entry) for entry, _ in stored],
            created_count=created,
            updated_count=len(stored) - created,
        )

    async def DeleteEntries(self, request: pb.DeleteEntriesRequest, context: Context) -> pb.DeleteEntriesResponse:
        ids = [parse_number_id(i, "entry_ids") for i in request.entry_ids]
        targets = [normalise_pattern(t) if is_pattern(t) else normalise_plate(t) for t in request.targets]
        deleted = await self._core.catalog.delete_entries(request.hotlist_name, ids, targets)
        return pb.DeleteEntriesResponse(deleted_count=deleted)

    async def ListEntries(self, request: pb.ListEntriesRequest, context: Context) -> pb.ListEntriesResponse:
        prefix = request.target_prefix.upper()
        if len(prefix) > 20 or not all(c.isascii() and (c.isalnum() or c in "*?") for c in prefix):
            raise InvalidArgument("target_prefix must be normalised plate or pattern text")
        found, token = await self._core.catalog.page_entries(
            request.hotlist_name, request.page.page_token, self._size(request.page), prefix, request.include_expired
        )
        return pb.ListEntriesResponse(
            entries=[convert.entry_message(e) for e in found], page=paging_pb2.PageResult(next_page_token=token)
        )

    async def ImportEntries(
        self, request_iterator: AsyncIterator[pb.ImportEntriesRequest], context: Context
    ) -> pb.ImportEntriesResponse:
        first = await anext(aiter(request_iterator), None)
        if first is None or not first.HasField("header"):
            raise InvalidArgument("the first ImportEntries message must carry the header")
        header = ImportHeader(
            hotlist_name=first.header.hotlist_name,
            replace=first.header.mode == import_pb2.IMPORT_MODE_REPLACE,
            dry_run=first.header.dry_run,
            origin=first.header.origin,
        )

        async def batches() -> AsyncIterator[list[ImportRow]]:
            yield _rows(first)
            async for message in request_iterator:
                if message.HasField("header"):
                    raise InvalidArgument("only the first ImportEntries message may carry a header")
                yield _rows(message)

        result = await self._core.importer.run(header, batches())
        return pb.ImportEntriesResponse(**convert.import_response_fields(result))

    # -- matching and reads -------------------------------------------------------------------------------------

    async def Match(self, request: pb.MatchRequest, context: Context) -> pb.MatchResponse:
        reading = plate_text(
            request.reading.text,
            request.reading.confidence,
            [(alt.text, alt.confidence) for alt in request.reading.alternatives],
            request.reading.hidden_characters,
        )
        lists = self._core.matcher.list_ids(list(request.hotlist_names))
        limit = min(request.max_hits or self._settings.max_hits, self._settings.max_hits)
        raw = self._core.matcher.raw_hits(reading, lists, request.include_weak_hits, limit)
        async with self._core.pool.acquire() as connection:
            hits = await with_details(connection, raw)
        return pb.MatchResponse(hits=[convert.hit_message(h) for h in hits], normalized_text=reading.text)

    async def ReportReads(self, request: pb.ReportReadsRequest, context: Context) -> pb.ReportReadsResponse:
        if len(request.events) > self._settings.max_report_batch:
            raise InvalidArgument(f"at most {self._settings.max_report_batch} events per call")
        recorder = self._core.recorder
        admitted = [admit(event, recorder.max_crop_bytes) for event in request.events]
        outcomes = await recorder.report([e if isinstance(e, Refused) else convert.read_event(e) for e in admitted])
        return pb.ReportReadsResponse(results=[convert.read_result(o) for o in outcomes])

    # -- alerts -------------------------------------------------------------------------------------------------

    async def SubscribeAlerts(
        self, request: pb.SubscribeAlertsRequest, context: Context
    ) -> AsyncIterator[pb.SubscribeAlertsResponse]:
        hub = self._core.hub
        start = await hub.start_position(
            request.after_cursor, request.start == hotlist_service_pb2.ALERT_STREAM_START_EARLIEST
        )
        filters = Filters(
            hotlist_names=frozenset(request.hotlist_names),
            min_priority=request.min_priority,
            camera_ids=frozenset(request.camera_ids),
            include_updates=request.include_updates,
        )
        async for message in hub.subscribe(start, filters):
            cursor = encode_cursor(message.position)
            if message.item is None:
                yield pb.SubscribeAlertsResponse(
                    cursor=cursor,
                    heartbeat=pb.Heartbeat(server_time=convert.timestamp(datetime.now(UTC)), live=message.live),
                )
                continue
            yield pb.SubscribeAlertsResponse(
                cursor=cursor,
                update=pb.AlertUpdate(
                    change=int(message.item.change),  # type: ignore[arg-type]
                    alert=convert.alert_message(message.item.alert, request.include_plate_crops),
                ),
            )

    async def AcknowledgeAlert(
        self, request: pb.AcknowledgeAlertRequest, context: Context
    ) -> pb.AcknowledgeAlertResponse:
        alert, changed = await alerts.acknowledge(
            self._core.pool,
            alerts.parse_alert_id(request.alert_id),
            request.outcome,
            request.rejection_reason,
            request.note,
        )
        return pb.AcknowledgeAlertResponse(alert=convert.alert_message(alert), changed=changed)

    # -- privacy ------------------------------------------------------------------------------------------------

    async def SearchReads(self, request: pb.SearchReadsRequest, context: Context) -> pb.SearchReadsResponse:
        time_range = request.time_range
        query = SearchQuery(
            purpose=request.purpose,
            case_reference=request.case_reference,
            plate_pattern=request.plate_pattern,
            ocr_tolerant=request.ocr_tolerant,
            start=convert.when(time_range.start_time, time_range.HasField("start_time")),
            end=convert.when(time_range.end_time, time_range.HasField("end_time")),
            camera_ids=tuple(request.camera_ids),
            area=convert.area(request.area) if request.HasField("area") else None,
            hits_only=request.hits_only,
            include_crops=request.include_plate_crops,
        )
        found, token, audit_id = await self._core.search.search(
            query, request.page.page_token, self._size(request.page)
        )
        return pb.SearchReadsResponse(
            reads=[convert.plate_read(r, request.include_plate_crops) for r in found],
            page=paging_pb2.PageResult(next_page_token=token),
            audit_id=str(audit_id),
        )

    async def GetAuditLog(self, request: pb.GetAuditLogRequest, context: Context) -> pb.GetAuditLogResponse:
        time_range = request.time_range
        query = AuditQuery(
            start=convert.when(time_range.start_time, time_range.HasField("start_time")),
            end=convert.when(time_range.end_time, time_range.HasField("end_time")),
            actor=request.actor,
            actions=[_action_name(a) for a in request.actions],
            target_id=request.target_id,
        )
        found, token = await read_page(self._core.pool, query, request.page.page_token, self._size(request.page))
        return pb.GetAuditLogResponse(
            records=[convert.audit_message(r) for r in found], page=paging_pb2.PageResult(next_page_token=token)
        )


def _rows(message: pb.ImportEntriesRequest) -> list[ImportRow]:
    return [
        ImportRow(
            row_number=row.row_number,
            plate=row.entry.plate,
            pattern=row.entry.pattern,
            fields=convert.entry_fields(row.entry, "", False),
        )
        for row in message.rows
    ]


def _action_name(value: int) -> str:
    if value not in audit_pb2.AuditAction.values() or value == audit_pb2.AUDIT_ACTION_UNSPECIFIED:
        raise InvalidArgument("actions contains an unknown action")
    return audit_pb2.AuditAction.Name(value).removeprefix("AUDIT_ACTION_")  # type: ignore[arg-type]
