"""``anpr reads search`` (role investigator) and ``anpr audit`` (role auditor): the audited lookups at hotlist.

``reads search`` needs a stated purpose (it is written to the audit trail before the search runs) and prints one
JSON object per stored read of the last ``--days`` days, following pages up to ``--limit``. ``anpr audit`` lists
hotlist's audit trail (GetAuditLog: list changes, acknowledgements, searches, retention runs, audit reads),
optionally of one actor or target. Ingest keeps its own audit rows (dead-letter lookups); the public API has no
call that lists them, so ``anpr audit`` covers hotlist's trail only.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

from google.protobuf.message import Message

from anpr.api.common.v1 import paging_pb2, time_range_pb2
from anpr.api.hotlist.v1 import hotlist_service_pb2 as pb
from anpr.api.hotlist.v1 import hotlist_service_pb2_grpc
from anpr.cli.calls import channel, metadata, print_message, run_command
from anpr.cli.profile import Target, add_connection_arguments, resolve


def add_reads_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-commands of ``anpr reads``."""
    commands = parser.add_subparsers(dest="reads_command", metavar="COMMAND", required=True)
    search = commands.add_parser("search", help="search stored plate reads (audited: state why)")
    search.add_argument("--purpose", required=True, help="why the search is made (kept in the audit trail)")
    search.add_argument("--case", dest="case_reference", default="", help="case reference")
    search.add_argument("--plate", default="", help="plate or pattern (* and ? wildcards)")
    search.add_argument("--ocr-tolerant", action="store_true", help="also match OCR confusions (0/O, 8/B, ...)")
    search.add_argument("--camera", dest="cameras", action="append", default=[], help="only this camera (repeat)")
    search.add_argument("--days", type=float, default=30.0, help="search the last DAYS days (default 30)")
    search.add_argument("--hits-only", action="store_true", help="only reads that raised an alert")
    search.add_argument("--limit", type=int, default=1000, help="most reads printed (default 1000)")
    add_connection_arguments(search)


def add_audit_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``anpr audit``."""
    parser.add_argument("--actor", default="", help="only records of this client identity")
    parser.add_argument("--target", dest="target_id", default="", help="only records about this target id")
    parser.add_argument("--limit", type=int, default=100, help="most records printed (default 100)")
    add_connection_arguments(parser)


async def _pages(
    call: Callable[[paging_pb2.PageRequest], Awaitable[Message]], items: str, limit: int
) -> AsyncIterator[Message]:
    page_token = ""
    printed = 0
    while printed < limit:
        page = await call(paging_pb2.PageRequest(page_size=min(limit - printed, 1000), page_token=page_token))
        for item in getattr(page, items):
            if printed >= limit:
                return
            printed += 1
            yield item
        page_token = page.page.next_page_token  # type: ignore[attr-defined]
        if not page_token:
            return


async def _search(args: argparse.Namespace, target: Target) -> None:
    end = datetime.now(UTC)
    window = time_range_pb2.TimeRange()
    window.start_time.FromDatetime(end - timedelta(days=args.days))
    window.end_time.FromDatetime(end)
    async with channel(target) as open_channel:
        stub = hotlist_service_pb2_grpc.HotlistServiceStub(open_channel)

        def call(page: paging_pb2.PageRequest) -> Awaitable[Message]:
            request = pb.SearchReadsRequest(
                purpose=args.purpose,
                case_reference=args.case_reference,
                plate_pattern=args.plate,
                ocr_tolerant=args.ocr_tolerant,
                camera_ids=args.cameras,
                time_range=window,
                hits_only=args.hits_only,
                page=page,
            )
            return stub.SearchReads(request, metadata=metadata(target))

        async for read in _pages(call, "reads", args.limit):
            print_message(read)


async def _audit(args: argparse.Namespace, target: Target) -> None:
    async with channel(target) as open_channel:
        stub = hotlist_service_pb2_grpc.HotlistServiceStub(open_channel)

        def call(page: paging_pb2.PageRequest) -> Awaitable[Message]:
            request = pb.GetAuditLogRequest(page=page, actor=args.actor, target_id=args.target_id)
            return stub.GetAuditLog(request, metadata=metadata(target))

        async for record in _pages(call, "records", args.limit):
            print_message(record)


def run_reads(args: argparse.Namespace) -> int:
    """Run ``anpr reads search``."""

    async def action() -> None:
        await _search(args, resolve(args, "hotlist", "investigator"))

    return run_command("reads search", action)


def run_audit(args: argparse.Namespace) -> int:
    """Run ``anpr audit``."""

    async def action() -> None:
        await _audit(args, resolve(args, "hotlist", "auditor"))

    return run_command("audit", action)
