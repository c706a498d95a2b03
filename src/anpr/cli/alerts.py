"""``anpr alerts tail`` and ``anpr alerts ack``: watch and acknowledge alerts at hotlist (role operator).

``tail`` prints one JSON object per alert update and resumes where it stopped: after every update it keeps the
stream's cursor in a state file next to the profile (``alerts.cursor``; ``--state-file`` names another), and the
next ``tail`` starts after it. ``--from CURSOR`` starts after a given cursor, ``--from-start`` replays every
stored alert; without a cursor it starts with the next new alert. ``--until-live`` stops once the replay has
caught up with live alerts, ``--count N`` after N updates; otherwise it runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from anpr.api.hotlist.v1 import alert_pb2, hotlist_service_pb2_grpc
from anpr.api.hotlist.v1 import hotlist_service_pb2 as pb
from anpr.cli.calls import channel, metadata, print_message, run_command
from anpr.cli.profile import Target, add_connection_arguments, profile_path, resolve

ROLE = "operator"
REASONS = ("misread", "vehicle-mismatch", "entry-outdated", "duplicate", "other")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-commands of ``anpr alerts``."""
    commands = parser.add_subparsers(dest="alerts_command", metavar="COMMAND", required=True)
    tail = commands.add_parser("tail", help="print alerts as they are raised, resuming where the last tail stopped")
    start = tail.add_mutually_exclusive_group()
    start.add_argument("--from", dest="cursor", default=None, metavar="CURSOR", help="start after this cursor")
    start.add_argument("--from-start", action="store_true", help="replay every stored alert first")
    tail.add_argument("--state-file", type=Path, default=None, help="where the last cursor is kept")
    tail.add_argument("--until-live", action="store_true", help="stop once caught up with live alerts")
    tail.add_argument("--count", type=int, default=0, help="stop after this many alert updates")
    ack = commands.add_parser("ack", help="acknowledge an alert: confirm it or reject it with a reason")
    ack.add_argument("alert_id")
    verdict = ack.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--confirm", action="store_true", help="the vehicle is the listed one")
    verdict.add_argument("--reject", choices=REASONS, metavar="REASON", help=f"not a match: {', '.join(REASONS)}")
    ack.add_argument("--note", default="", help="free text kept with the acknowledgement")
    for command in (tail, ack):
        add_connection_arguments(command)


def _state_file(args: argparse.Namespace) -> Path:
    if args.state_file is not None:
        return Path(args.state_file)
    return profile_path(args.profile).with_name("alerts.cursor")


def _remember(path: Path, cursor: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    staging.write_text(cursor)
    staging.replace(path)


async def _tail(args: argparse.Namespace, target: Target) -> None:
    state = _state_file(args)
    cursor = args.cursor
    if cursor is None and not args.from_start and state.is_file():
        cursor = state.read_text().strip()
    request = pb.SubscribeAlertsRequest(after_cursor=cursor or "")
    if not cursor:
        request.start = pb.ALERT_STREAM_START_EARLIEST if args.from_start else pb.ALERT_STREAM_START_LATEST
    printed = 0
    async with channel(target) as open_channel:
        stub = hotlist_service_pb2_grpc.HotlistServiceStub(open_channel)
        call = stub.SubscribeAlerts(request, metadata=metadata(target))
        try:
            async for message in call:
                if message.cursor:
                    _remember(state, message.cursor)
                if message.HasField("update"):
                    print_message(message.update)
                    printed += 1
                    if args.count and printed >= args.count:
                        return
                elif args.until_live and message.heartbeat.live:
                    return
        finally:
            with contextlib.suppress(Exception):
                call.cancel()


async def _ack(args: argparse.Namespace, target: Target) -> None:
    request = pb.AcknowledgeAlertRequest(alert_id=args.alert_id, note=args.note)
    if args.confirm:
        request.outcome = alert_pb2.ALERT_OUTCOME_CONFIRMED
    else:
        request.outcome = alert_pb2.ALERT_OUTCOME_REJECTED
        request.rejection_reason = alert_pb2.RejectionReason.Value(
            "REJECTION_REASON_" + args.reject.upper().replace("-", "_")
        )
    async with channel(target) as open_channel:
        stub = hotlist_service_pb2_grpc.HotlistServiceStub(open_channel)
        response = await stub.AcknowledgeAlert(request, metadata=metadata(target))
        print_message(response.alert)


def run(args: argparse.Namespace) -> int:
    """Run ``anpr alerts ...``."""

    async def action() -> None:
        target = resolve(args, "hotlist", ROLE)
        await (_tail(args, target) if args.alerts_command == "tail" else _ack(args, target))

    return run_command(f"alerts {args.alerts_command}", action)
