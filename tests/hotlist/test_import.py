"""ImportEntries and `anpr hotlist import`: row errors, idempotent upserts, atomic replace, failed streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import pytest

from anpr.api.common.v1 import plate_pb2
from anpr.api.hotlist.v1 import hotlist_pb2, import_pb2
from anpr.api.hotlist.v1 import hotlist_service_pb2 as pb
from anpr.cli import hotlist as hotlist_cli
from anpr.cli.main import main as anpr_main
from testkit.hotlist import Caller, caller, channel_to, create_list
from testkit.services import StartService

CSV = """plate,pattern,reason,make,action,expire_time
CA 123-456,,stolen,Toyota,STOP_VEHICLE,
,GP*99,warrant,,,
CA12$456,,bad plate,,,
,*,bad pattern,,,
,,no target,,,
ca123456,,duplicate of line 2,,,
ND 1,,expired,,,2001-01-01T00:00:00+00:00
WP 777,,long,,NOTIFY,2099-01-01T00:00:00+02:00
"""


async def _entries(admin: Caller, name: str) -> dict[str, hotlist_pb2.HotlistEntry]:
    listed = await admin.stub.ListEntries(pb.ListEntriesRequest(hotlist_name=name), metadata=admin.metadata)
    return {e.plate or e.pattern: e for e in listed.entries}


async def test_cli_import_reports_row_errors_and_keeps_good_rows(
    database_url: str,
    start_service: StartService,
    tokens: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = await start_service("hotlist", database_url=database_url)
    path = tmp_path / "list.csv"
    path.write_text(CSV)
    async with channel_to(server) as channel:
        admin = caller(channel, tokens["hotlist-admin"])
        await create_list(admin, "warrants")
        result = await hotlist_cli.import_file(server.address, tokens["hotlist-admin"], path, "warrants")
        assert (result.received_count, result.created_count, result.rejected_count, result.applied) == (8, 3, 5, True)
        reasons = {e.row_number: import_pb2.ImportErrorReason.Name(e.reason) for e in result.errors}
        assert reasons == {
            4: "IMPORT_ERROR_REASON_INVALID_PLATE",
            5: "IMPORT_ERROR_REASON_INVALID_PATTERN",
            6: "IMPORT_ERROR_REASON_MISSING_TARGET",
            7: "IMPORT_ERROR_REASON_DUPLICATE_ROW",
            8: "IMPORT_ERROR_REASON_ALREADY_EXPIRED",
        }
        stored = await _entries(admin, "warrants")
        assert set(stored) == {"CA123456", "GP*99", "WP777"}
        assert stored["CA123456"].action == hotlist_pb2.HOTLIST_ACTION_STOP_VEHICLE
        assert stored["CA123456"].vehicle.make == "Toyota"
        assert stored["WP777"].HasField("expire_time")

        # The same file again changes nothing (idempotent upsert) -- through the console script this time.
        def run_cli() -> None:
            anpr_main(
                [
                    "hotlist",
                    "import",
                    str(path),
                    "--list",
                    "warrants",
                    "--address",
                    server.address,
                    "--token",
                    tokens["hotlist-admin"],
                ]
            )

        with pytest.raises(SystemExit) as exited:
            await asyncio.to_thread(run_cli)
        assert exited.value.code == 0
        output = capsys.readouterr()
        assert '"created": 0' in output.out
        assert '"unchanged": 3' in output.out
        assert "line 4: INVALID_PLATE" in output.err

        with pytest.raises(SystemExit) as unknown_list:
            await asyncio.to_thread(
                anpr_main,
                [
                    "hotlist",
                    "import",
                    str(path),
                    "--list",
                    "nope",
                    "--address",
                    server.address,
                    "--token",
                    tokens["hotlist-admin"],
                ],
            )
        assert unknown_list.value.code == 1
        assert "NOT_FOUND" in capsys.readouterr().err


async def test_replace_swaps_the_list_atomically_and_dry_run_changes_nothing(
    database_url: str, start_service: StartService, tokens: dict[str, str], tmp_path: Path
) -> None:
    server = await start_service("hotlist", database_url=database_url)
    async with channel_to(server) as channel:
        admin = caller(channel, tokens["hotlist-admin"])
        operator = caller(channel, tokens["operator"])
        await create_list(admin, "fines")
        first = tmp_path / "first.csv"
        first.write_text("plate,reason\n" + "".join(f"AA{i:04d},fine\n" for i in range(3000)))
        result = await hotlist_cli.import_file(server.address, tokens["hotlist-admin"], first, "fines")
        assert result.created_count == 3000

        second = tmp_path / "second.csv"
        second.write_text("plate,reason\nAA0001,fine\nAA0002,changed\nBB0001,new\n")
        dry = await hotlist_cli.import_file(
            server.address, tokens["hotlist-admin"], second, "fines", replace=True, dry_run=True
        )
        assert (dry.applied, dry.created_count, dry.updated_count, dry.unchanged_count, dry.deleted_count) == (
            False,
            1,
            1,
            1,
            2998,
        )
        got = await admin.stub.GetHotlist(pb.GetHotlistRequest(name="fines"), metadata=admin.metadata)
        assert got.hotlist.entry_count == 3000

        done = await hotlist_cli.import_file(server.address, tokens["hotlist-admin"], second, "fines", replace=True)
        assert (done.applied, done.created_count, done.updated_count, done.deleted_count) == (True, 1, 1, 2998)
        assert set(await _entries(admin, "fines")) == {"AA0001", "AA0002", "BB0001"}
        got = await admin.stub.GetHotlist(pb.GetHotlistRequest(name="fines"), metadata=admin.metadata)
        assert got.hotlist.entry_count == 3

        def match(text: str) -> pb.MatchRequest:
            return pb.MatchRequest(reading=plate_pb2.PlateReading(text=text), hotlist_names=["fines"])

        assert (await operator.stub.Match(match("AA2999"), metadata=operator.metadata)).hits == []
        assert len((await operator.stub.Match(match("BB0001"), metadata=operator.metadata)).hits) == 1


async def test_failed_or_malformed_streams_change_nothing(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service("hotlist", database_url=database_url, max_import_rows="100")
    async with channel_to(server) as channel:
        admin = caller(channel, tokens["hotlist-admin"])
        await create_list(admin, "l")
        header = pb.ImportEntriesRequest(header=import_pb2.ImportHeader(hotlist_name="l"))
        rows = pb.ImportEntriesRequest(
            rows=[
                import_pb2.ImportRow(row_number=i, entry=hotlist_pb2.HotlistEntry(plate=f"CA{i:03d}"))
                for i in range(60)
            ]
        )

        async def stream(*messages: pb.ImportEntriesRequest) -> AsyncIterator[pb.ImportEntriesRequest]:
            for message in messages:
                yield message

        cases = [
            ((rows,), grpc.StatusCode.INVALID_ARGUMENT),  # no header
            ((header, rows, header), grpc.StatusCode.INVALID_ARGUMENT),  # second header
            ((header, rows, rows), grpc.StatusCode.INVALID_ARGUMENT),  # more than max_import_rows
            (
                (pb.ImportEntriesRequest(header=import_pb2.ImportHeader(hotlist_name="nope")), rows),
                grpc.StatusCode.NOT_FOUND,
            ),
        ]
        for messages, code in cases:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await admin.stub.ImportEntries(stream(*messages), metadata=admin.metadata)
            assert refused.value.code() == code
        assert await _entries(admin, "l") == {}

        # A client that gives up half-way: the rows it sent are not kept.
        call = admin.stub.ImportEntries(metadata=admin.metadata)  # type: ignore[call-arg]  # write-API style
        await call.write(header)
        await call.write(rows)
        await asyncio.sleep(0.2)
        call.cancel()
        await asyncio.sleep(0.2)
        assert await _entries(admin, "l") == {}
