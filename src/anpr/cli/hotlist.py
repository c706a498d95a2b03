"""``anpr hotlist import FILE --list NAME [--replace]``: bulk-load hotlist entries from a CSV file.

The CSV has a header row; columns (all optional but one of ``plate``/``pattern``): ``plate``, ``pattern``,
``reason``, ``make``, ``model``, ``colour``, ``notes``, ``external_reference``, ``action`` (a name such as
``STOP_VEHICLE`` or its number), ``instructions``, ``expire_time`` (ISO 8601 with a zone). Rows are streamed to a
running hotlist service (``ImportEntries``), which reports refused rows by line number and keeps the good ones;
the import is applied atomically when the file ends. Without ``--replace`` it upserts; with it, the file becomes
the whole list. ``anpr hotlist`` without a sub-command runs the service itself. TLS and mutual TLS come from
``--ca-file``/``--cert``/``--key`` (see :mod:`anpr.cli.transport`).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import datetime
from pathlib import Path

import grpc
import grpc.aio

from anpr.api.hotlist.v1 import hotlist_pb2, hotlist_service_pb2_grpc, import_pb2
from anpr.api.hotlist.v1 import hotlist_service_pb2 as pb
from anpr.cli import hotlist_admin
from anpr.cli.calls import run_command
from anpr.cli.profile import add_connection_arguments, resolve
from anpr.runtime import tls

COLUMNS = frozenset(
    {
        "plate",
        "pattern",
        "reason",
        "make",
        "model",
        "colour",
        "notes",
        "external_reference",
        "action",
        "instructions",
        "expire_time",
    }
)
BATCH_ROWS = 5000
SHOWN_ERRORS = 20


class CsvError(ValueError):
    """The file cannot be imported as a whole (bad header, bad value in a column the server cannot judge)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-commands of ``anpr hotlist``."""
    commands = parser.add_subparsers(dest="hotlist_command", metavar="COMMAND")
    command = commands.add_parser("import", help="import entries from a CSV file into a hotlist")
    command.add_argument("file", type=Path, help="CSV file with a header row (see `anpr hotlist import --help`)")
    command.add_argument("--list", dest="hotlist", required=True, help="name of the hotlist to import into")
    command.add_argument("--replace", action="store_true", help="make the file the whole list (atomic swap)")
    command.add_argument("--dry-run", action="store_true", help="validate and count only; change nothing")
    add_connection_arguments(command)
    hotlist_admin.add_commands(commands)


def _action(value: str, line: int) -> int:
    if not value:
        return 0
    if value.isdigit():
        return int(value)
    name = value.strip().upper()
    try:
        return int(
            hotlist_pb2.HotlistAction.Value(name if name.startswith("HOTLIST_ACTION_") else f"HOTLIST_ACTION_{name}")
        )
    except ValueError:
        raise CsvError(f"line {line}: unknown action {value!r}") from None


def entry_of(row: dict[str, str], line: int) -> hotlist_pb2.HotlistEntry:
    """The entry of one CSV row (plate and pattern are checked by the server, row by row)."""
    entry = hotlist_pb2.HotlistEntry(
        reason=row.get("reason") or "",
        vehicle=hotlist_pb2.VehicleDescription(
            make=row.get("make") or "",
            model=row.get("model") or "",
            colour=row.get("colour") or "",
            notes=row.get("notes") or "",
        ),
        external_reference=row.get("external_reference") or "",
        action=_action(row.get("action") or "", line),  # type: ignore[arg-type]
        instructions=row.get("instructions") or "",
    )
    if row.get("pattern"):
        entry.pattern = row["pattern"]
    if row.get("plate"):
        entry.plate = row["plate"]
    expiry = (row.get("expire_time") or "").strip()
    if expiry:
        try:
            moment = datetime.fromisoformat(expiry)
        except ValueError:
            raise CsvError(f"line {line}: expire_time is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            raise CsvError(f"line {line}: expire_time needs a time zone, e.g. 2026-12-31T00:00:00+02:00")
        entry.expire_time.FromDatetime(moment)
    return entry


def _check_columns(fieldnames: Sequence[str] | None) -> None:
    header = set(fieldnames or ())
    unknown = header - COLUMNS
    if unknown:
        raise CsvError(f"unknown columns {sorted(unknown)}; known: {sorted(COLUMNS)}")
    if not header & {"plate", "pattern"}:
        raise CsvError("the header needs a plate or a pattern column")


def read_batches(path: Path, batch_rows: int = BATCH_ROWS) -> Iterator[list[import_pb2.ImportRow]]:
    """Rows of the file in batches, numbered by their line in the file."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        _check_columns(reader.fieldnames)
        batch: list[import_pb2.ImportRow] = []
        for row in reader:
            batch.append(import_pb2.ImportRow(row_number=reader.line_num, entry=entry_of(row, reader.line_num)))
            if len(batch) >= batch_rows:
                yield batch
                batch = []
        if batch:
            yield batch


async def import_file(
    address: str,
    token: str,
    path: Path,
    hotlist: str,
    *,
    replace: bool = False,
    dry_run: bool = False,
    client_tls: tls.ClientTls | None = None,
) -> pb.ImportEntriesResponse:
    """Stream the file to the service and return its answer."""
    header = import_pb2.ImportHeader(
        hotlist_name=hotlist,
        mode=import_pb2.IMPORT_MODE_REPLACE if replace else import_pb2.IMPORT_MODE_UPSERT,
        dry_run=dry_run,
        origin=path.name,
    )

    check_header(path)  # a missing file or a bad header is reported before any call
    failures: list[CsvError] = []

    async def requests() -> AsyncIterator[pb.ImportEntriesRequest]:
        yield pb.ImportEntriesRequest(header=header)
        try:
            for batch in read_batches(path):
                yield pb.ImportEntriesRequest(rows=batch)
        except CsvError as exc:
            # grpc turns an exception in the request iterator into a cancelled call: keep the reason to report it.
            failures.append(exc)
            raise

    async with tls.open_channel(address, client_tls) as channel:
        stub = hotlist_service_pb2_grpc.HotlistServiceStub(channel)
        try:
            response: pb.ImportEntriesResponse = await stub.ImportEntries(
                requests(), metadata=(("authorization", f"Bearer {token}"),)
            )
        except (asyncio.CancelledError, grpc.aio.AioRpcError):
            if failures:
                raise failures[0] from None
            raise
        return response


def check_header(path: Path) -> None:
    """Raise OSError for an unreadable file, CsvError for a header that cannot be imported."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        _check_columns(csv.DictReader(handle).fieldnames)


def run(args: argparse.Namespace) -> int:
    """Run ``anpr hotlist import`` (prints a JSON summary and the first refused rows) or another sub-command."""
    if args.hotlist_command != "import":
        return hotlist_admin.run(args)

    async def action() -> int:
        target = resolve(args, "hotlist", hotlist_admin.ROLE)
        result = await import_file(
            target.address,
            target.token,
            args.file,
            args.hotlist,
            replace=args.replace,
            dry_run=args.dry_run,
            client_tls=target.tls,
        )
        _report(result)
        return 0

    return run_command("hotlist import", action)


def _report(result: pb.ImportEntriesResponse) -> None:
    summary = {
        "applied": result.applied,
        "received": result.received_count,
        "created": result.created_count,
        "updated": result.updated_count,
        "unchanged": result.unchanged_count,
        "deleted": result.deleted_count,
        "rejected": result.rejected_count,
    }
    print(json.dumps(summary))
    for error in result.errors[:SHOWN_ERRORS]:
        reason = import_pb2.ImportErrorReason.Name(error.reason).removeprefix("IMPORT_ERROR_REASON_")
        print(f"line {error.row_number}: {reason}: {error.message}", file=sys.stderr)
    if result.rejected_count > SHOWN_ERRORS:
        print(f"... {result.rejected_count - SHOWN_ERRORS} more rows refused", file=sys.stderr)
