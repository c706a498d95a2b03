"""``anpr match PLATE``: check a plate, or the visible part of one, against the hotlists (role operator).

An officer's ad-hoc question, ``HotlistService.Match``: prints one JSON object per hit, strongest first (nothing
when no list holds the plate). ``--hidden N`` says the text is only part of the plate, with N runs of characters
not seen (a witness saw ``…T2905``; a photo cut the plate): such a text alerts only where a list accepts uncertain
matches, and may match an entry with the unseen characters as gaps. ``--weak`` also prints hits that would not
raise an alert (their ``meets_strictness`` is false, so proto JSON leaves it out). Nothing is stored: ``Match``
records no read and raises no alert.
"""

from __future__ import annotations

import argparse

from anpr.api.common.v1 import plate_pb2
from anpr.api.hotlist.v1 import hotlist_service_pb2 as pb
from anpr.api.hotlist.v1 import hotlist_service_pb2_grpc
from anpr.cli.calls import channel, metadata, print_message, run_command
from anpr.cli.profile import Target, add_connection_arguments, resolve

ROLE = "operator"


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``anpr match``."""
    parser.add_argument("plate", help="the plate as read or seen (spaces and dashes are ignored)")
    parser.add_argument(
        "--hidden", type=_count, default=0, metavar="N", help="the text is part of the plate: N runs of it unseen"
    )
    parser.add_argument("--list", dest="lists", action="append", default=[], help="only this hotlist (repeat)")
    parser.add_argument("--weak", action="store_true", help="also print hits that would raise no alert")
    parser.add_argument("--max-hits", type=_count, default=0, help="most hits printed (default: the server's)")
    add_connection_arguments(parser)


async def _match(args: argparse.Namespace, target: Target) -> None:
    reading = plate_pb2.PlateReading(text=args.plate, hidden_characters=args.hidden)
    request = pb.MatchRequest(
        reading=reading, hotlist_names=args.lists, include_weak_hits=args.weak, max_hits=args.max_hits
    )
    async with channel(target) as open_channel:
        stub = hotlist_service_pb2_grpc.HotlistServiceStub(open_channel)
        reply = await stub.Match(request, metadata=metadata(target))
    for hit in reply.hits:
        print_message(hit)


def run(args: argparse.Namespace) -> int:
    """Run ``anpr match``."""

    async def action() -> None:
        await _match(args, resolve(args, "hotlist", ROLE))

    return run_command("match", action)
