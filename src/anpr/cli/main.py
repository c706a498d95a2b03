"""``anpr``: one command for operators and developers.

Sub-commands: ``up`` (run the whole suite locally), ``token`` (make a client token for a secrets file), ``read``
(recognise plates in image files), ``eval`` (score recognition on a labelled set), and one per service
(``ingest``, ``recognize``, ``hotlist``) that runs that service in the foreground.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from anpr.cli import alerts, cameras, evaluate, hotlist, match, read, records, token, up, upload
from anpr.demo import options as demo_options
from anpr.runtime.extras import MissingExtraError, require

# The optional parts of the install (pyproject's extras) each command needs; checked before it starts, so that a
# service-only install answers with the `pip install` line instead of an ImportError halfway through.
NEEDS: dict[str, tuple[str, ...]] = {
    "up": ("recognize",),
    "demo": ("demo", "recognize"),
    "read": ("recognize",),
    "eval": ("recognize",),
    "recognize": ("recognize",),
}


def _run_service(name: str) -> None:
    if name == "ingest":
        from anpr.ingest.server import main as service_main
    elif name == "recognize":
        from anpr.recognize.server import main as service_main
    else:
        from anpr.hotlist.server import main as service_main
    service_main([])  # `anpr <service> --help` is answered by this parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="anpr", description="Automatic number plate recognition suite.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up.add_arguments(commands.add_parser("up", help="run ingest, recognize and hotlist locally, supervised"))
    demo_options.add_arguments(
        commands.add_parser("demo", help="anpr up plus a simulated fleet, a demo hotlist and a live view")
    )
    token.add_arguments(commands.add_parser("token", help="make a bearer token and its secrets-file entry"))
    read.add_arguments(commands.add_parser("read", help="recognise the plates in image files"))
    evaluate.add_arguments(commands.add_parser("eval", help="score plate recognition on a labelled set"))
    cameras.add_arguments(commands.add_parser("cameras", help="register, list and remove cameras (ingest-admin)"))
    alerts.add_arguments(commands.add_parser("alerts", help="tail and acknowledge alerts (operator)"))
    match.add_arguments(commands.add_parser("match", help="check a plate, or part of one, against hotlists (operator)"))
    records.add_reads_arguments(commands.add_parser("reads", help="search stored plate reads (investigator)"))
    records.add_audit_arguments(commands.add_parser("audit", help="list hotlist's audit trail (auditor)"))
    upload.add_arguments(commands.add_parser("upload", help="upload a (body-worn) recording to ingest, resumably"))
    for name in ("ingest", "recognize", "hotlist"):
        service = commands.add_parser(
            name, help=f"run the {name} service (settings from ANPR_{name.upper()}_* variables)"
        )
        if name == "hotlist":
            hotlist.add_arguments(service)  # `anpr hotlist import ...`; plain `anpr hotlist` runs the service
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``anpr`` console script."""
    args = build_parser().parse_args(argv)
    extras = NEEDS.get(args.command, ())
    if args.command in ("up", "demo") and not args.database_url:
        extras += ("embedded-db",)
    try:
        for extra in extras:
            require(extra, f"anpr {args.command}")
    except MissingExtraError as exc:
        print(f"anpr: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.command == "up":
        raise SystemExit(up.run(args))
    if args.command == "demo":
        from anpr.demo import run as demo  # rich, Pillow and the plate renderer: the demo extra

        raise SystemExit(demo.run(args))
    if args.command == "token":
        raise SystemExit(token.run(args))
    if args.command == "read":
        raise SystemExit(read.run(args))
    if args.command == "eval":
        raise SystemExit(evaluate.run(args))
    if args.command == "cameras":
        raise SystemExit(cameras.run(args))
    if args.command == "alerts":
        raise SystemExit(alerts.run(args))
    if args.command == "match":
        raise SystemExit(match.run(args))
    if args.command == "reads":
        raise SystemExit(records.run_reads(args))
    if args.command == "audit":
        raise SystemExit(records.run_audit(args))
    if args.command == "upload":
        raise SystemExit(upload.run(args))
    if args.command == "hotlist" and args.hotlist_command:
        raise SystemExit(hotlist.run(args))
    _run_service(args.command)


if __name__ == "__main__":
    main(sys.argv[1:])
