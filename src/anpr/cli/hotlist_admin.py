"""``anpr hotlist create|list|entries|remove``: maintain hotlists at the hotlist service (role hotlist-admin).

Listings print one JSON object per line. ``remove NAME`` deletes a list with its entries; ``remove NAME --plate
TARGET`` (repeatable) deletes only those entries (a plate or a pattern, as listed). ``import`` lives in
:mod:`anpr.cli.hotlist`.
"""

from __future__ import annotations

import argparse
from typing import Any

from anpr.api.common.v1 import paging_pb2
from anpr.api.hotlist.v1 import hotlist_pb2, hotlist_service_pb2_grpc
from anpr.api.hotlist.v1 import hotlist_service_pb2 as pb
from anpr.cli.calls import channel, metadata, print_message, run_command
from anpr.cli.profile import Target, add_connection_arguments, resolve

ROLE = "hotlist-admin"
ACTIONS = ("notify", "observe-and-report", "stop-vehicle", "do-not-approach")
STRICTNESS = ("exact", "standard", "lenient")


def add_commands(commands: Any) -> None:
    """Add ``create``, ``list``, ``entries`` and ``remove`` to ``anpr hotlist``'s sub-commands."""
    create = commands.add_parser("create", help="create a hotlist")
    create.add_argument("name", help="list name (lower case letters, digits, '-', '_')")
    create.add_argument("--display-name", default="", help="name shown to operators")
    create.add_argument("--description", default="", help="what the list is for")
    create.add_argument("--source", default="", help="where its entries come from")
    create.add_argument("--priority", type=int, default=0, help="alert priority of its hits")
    create.add_argument("--action", choices=ACTIONS, default=None, help="default action on a hit")
    create.add_argument(
        "--strictness",
        choices=STRICTNESS,
        default=None,
        help="which matches alert: exact, standard (OCR confusions too) or lenient (edits and partial reads too); "
        "default: the service's",
    )
    listing = commands.add_parser("list", help="list hotlists, one JSON object per line")
    listing.add_argument("--include-inactive", action="store_true", help="list inactive hotlists too")
    entries = commands.add_parser("entries", help="list a hotlist's entries, one JSON object per line")
    entries.add_argument("name")
    entries.add_argument("--prefix", default="", help="only plates and patterns starting with this")
    entries.add_argument("--include-expired", action="store_true", help="list expired entries too")
    remove = commands.add_parser("remove", help="delete a hotlist, or with --plate only some entries")
    remove.add_argument("name")
    remove.add_argument("--plate", dest="targets", action="append", default=[], help="entry to delete (repeat)")
    for command in (create, listing, entries, remove):
        add_connection_arguments(command)


def _hotlist(args: argparse.Namespace) -> hotlist_pb2.Hotlist:
    hotlist = hotlist_pb2.Hotlist(
        name=args.name,
        display_name=args.display_name,
        description=args.description,
        source=args.source,
        priority=args.priority,
        active=True,
    )
    if args.action:
        hotlist.default_action = hotlist_pb2.HotlistAction.Value(
            "HOTLIST_ACTION_" + args.action.upper().replace("-", "_")
        )
    if args.strictness:
        hotlist.strictness = hotlist_pb2.MatchStrictness.Value("MATCH_STRICTNESS_" + args.strictness.upper())
    return hotlist


async def _call(args: argparse.Namespace, target: Target) -> None:
    async with channel(target) as open_channel:
        stub = hotlist_service_pb2_grpc.HotlistServiceStub(open_channel)
        command = args.hotlist_command
        if command == "create":
            created = await stub.CreateHotlist(
                pb.CreateHotlistRequest(hotlist=_hotlist(args)), metadata=metadata(target)
            )
            print_message(created.hotlist)
        elif command == "remove" and args.targets:
            request = pb.DeleteEntriesRequest(hotlist_name=args.name, targets=args.targets)
            print_message(await stub.DeleteEntries(request, metadata=metadata(target)))
        elif command == "remove":
            print_message(await stub.DeleteHotlist(pb.DeleteHotlistRequest(name=args.name), metadata=metadata(target)))
        else:
            page_token = ""
            while True:
                page_request = paging_pb2.PageRequest(page_token=page_token)
                if command == "list":
                    request_lists = pb.ListHotlistsRequest(page=page_request, include_inactive=args.include_inactive)
                    page: Any = await stub.ListHotlists(request_lists, metadata=metadata(target))
                    items = page.hotlists
                else:
                    request_entries = pb.ListEntriesRequest(
                        hotlist_name=args.name,
                        page=page_request,
                        target_prefix=args.prefix,
                        include_expired=args.include_expired,
                    )
                    page = await stub.ListEntries(request_entries, metadata=metadata(target))
                    items = page.entries
                for item in items:
                    print_message(item)
                page_token = page.page.next_page_token
                if not page_token:
                    break


def run(args: argparse.Namespace) -> int:
    """Run ``anpr hotlist create|list|entries|remove``."""

    async def action() -> None:
        await _call(args, resolve(args, "hotlist", ROLE))

    return run_command(f"hotlist {args.hotlist_command}", action)
