"""Hotlist benchmark: import 1,000,000 entries, then memory, match latency and throughput at that size, against a peer.

1. Import: a seeded CSV of N plates (South African formats) goes through ``anpr hotlist import`` (client stream,
   batches of 5,000 rows) into a hotlist service running as its own process on a fresh database; timed from the
   first row sent until the service answered (staging COPY, merge, commit and its index refresh included).
   Resident memory of the service (VmRSS): empty, after the import, and after a restart that loads the list
   (issue 19's target: at most 400 MB with 1,000,000 entries).
2. Match, in-process: the same entries in a :class:`MatchIndex`; a seeded query mix (90 % plates not on the list,
   10 % listed plates with an OCR confusion or one edit) timed one call at a time on one core: p50/p99/max
   latency and matches/s, for a lenient list (edit distance on: every candidate verified) and for a standard one
   (the service default: exact and OCR-confusion only).
3. Match, through gRPC: sequential ``Match`` calls to the running service (latency a client sees).
4. Peer: the same queries as one plain PostgreSQL query each over the same entries table, using pg_trgm (GIN
   index, ``%`` similarity) to find candidates and fuzzystrmatch ``levenshtein_less_equal`` to confirm, with
   confusion folding done by ``translate()``: the obvious "just ask the database" design. Skipped when the
   extensions are not available. Reports the ratio of p99 latencies.

    python bench/hotlist/hotlist_bench.py --entries 1000000 --queries 20000 --out /tmp/hotlist-bench.json

Needs a PostgreSQL server it may create a database on (``--database-url``, default the local test server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc.aio

from anpr.api.common.v1 import plate_pb2
from anpr.api.hotlist.v1 import hotlist_pb2, hotlist_service_pb2_grpc
from anpr.api.hotlist.v1 import hotlist_service_pb2 as pb
from anpr.cli.hotlist import import_file
from anpr.hotlist.matching import IndexedEntry, ListInfo, MatchIndex, MatchRules, Reading, Strictness
from anpr.hotlist.plates import Folding
from anpr.hotlist.settings import DEFAULT_CONFUSION_CLASSES

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))  # the seeded list lives with the tests' helpers
from testkit.seeded_plates import DIGITS, LETTERS, make_plate, plates

CONFUSIONS = {"0": "O", "O": "0", "1": "I", "I": "1", "5": "S", "S": "5", "8": "B", "B": "8", "2": "Z", "Z": "2"}


def distort(plate: str, rng: random.Random) -> str:
    """A reading of the plate with one OCR confusion or one substitution."""
    position = rng.randrange(len(plate))
    char = plate[position]
    if char in CONFUSIONS and rng.random() < 0.5:
        replacement = CONFUSIONS[char]
    else:
        replacement = rng.choice(DIGITS if char.isdigit() else LETTERS)
    return plate[:position] + replacement + plate[position + 1 :]


def queries(listed: list[str], count: int, seed: int) -> list[str]:
    """The query mix: 90 % random plates, 10 % distorted listed plates."""
    rng = random.Random(seed + 1)
    return [distort(rng.choice(listed), rng) if rng.random() < 0.1 else make_plate(rng) for _ in range(count)]


def latency_summary(samples_ns: list[int]) -> dict[str, float]:
    """p50/p99/max in milliseconds and calls per second of sequential calls."""
    ordered = sorted(samples_ns)
    total_s = sum(ordered) / 1e9
    return {
        "p50_ms": round(ordered[len(ordered) // 2] / 1e6, 4),
        "p99_ms": round(ordered[int(len(ordered) * 0.99)] / 1e6, 4),
        "max_ms": round(ordered[-1] / 1e6, 4),
        "mean_ms": round(statistics.fmean(ordered) / 1e6, 4),
        "per_second": round(len(ordered) / total_s, 1),
    }


def bench_index(entries: list[str], mix: list[str]) -> dict[str, Any]:
    """Build the index in-process and time single matches, for a lenient list and for a standard one."""
    index = MatchIndex(MatchRules(Folding(DEFAULT_CONFUSION_CLASSES)))
    index.set_list(ListInfo(1, "bench", 50, True, Strictness.LENIENT, 0.0))
    started = time.perf_counter()
    index.upsert(IndexedEntry(i + 1, 1, plate, False) for i, plate in enumerate(entries))
    result: dict[str, Any] = {"build_seconds": round(time.perf_counter() - started, 2)}
    readings = [[Reading(text, 0.9)] for text in mix]
    for strictness in (Strictness.LENIENT, Strictness.STANDARD):
        index.set_list(ListInfo(1, "bench", 50, True, strictness, 0.0))
        for reading in readings[:1000]:  # warm caches
            index.match(reading)
        samples: list[int] = []
        hits = 0
        cpu_started = time.process_time()
        for reading in readings:
            begin = time.perf_counter_ns()
            found = index.match(reading)
            samples.append(time.perf_counter_ns() - begin)
            hits += bool(found)
        cpu_s = time.process_time() - cpu_started
        summary = latency_summary(samples)
        summary.update(queries_with_hits=hits, matches_per_cpu_second=round(len(readings) / cpu_s, 1))
        result[strictness.name.lower()] = summary
    return result


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def start_service(database_url: str, workdir: Path, token: str) -> tuple[asyncio.subprocess.Process, str]:
    """Run anpr-hotlist as its own process; returns it and its gRPC address once ready."""
    tokens = workdir / "tokens.json"
    tokens.write_text(
        json.dumps({"clients": [{"identity": "bench", "roles": ["hotlist-admin", "operator"], "token": token}]})
    )
    ready = workdir / "ready.json"
    env = {
        **os.environ,
        "ANPR_HOTLIST_DATABASE_URL": database_url,
        "ANPR_HOTLIST_GRPC_PORT": "0",
        "ANPR_HOTLIST_METRICS_PORT": "0",
        "ANPR_HOTLIST_AUTH_TOKENS_FILE": str(tokens),
        "ANPR_HOTLIST_READY_FILE": str(ready),
        "ANPR_HOTLIST_LOG_LEVEL": "WARNING",
        "ANPR_HOTLIST_MAX_MESSAGE_BYTES": str(64 * 1024 * 1024),
    }
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "anpr.hotlist", env=env)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if process.returncode is not None or time.monotonic() > deadline:
            raise RuntimeError("hotlist service did not start")
        await asyncio.sleep(0.1)
    return process, json.loads(ready.read_text())["grpc_address"]


def resident_mb(pid: int) -> float:
    """Resident memory of a process (VmRSS), in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return round(int(status.split("VmRSS:")[1].split()[0]) / 1024, 1)


async def settled_resident_mb(pid: int, seconds: float = 3.0) -> float:
    """Resident memory once the process has had a moment to finish what it was doing."""
    await asyncio.sleep(seconds)
    return resident_mb(pid)


async def bench_grpc_match(address: str, token: str, mix: list[str]) -> dict[str, Any]:
    """Sequential Match calls through the service."""
    metadata = (("authorization", f"Bearer {token}"),)
    samples: list[int] = []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = hotlist_service_pb2_grpc.HotlistServiceStub(channel)
        for text in mix[:200]:  # warm-up
            await stub.Match(pb.MatchRequest(reading=plate_pb2.PlateReading(text=text)), metadata=metadata)
        for text in mix:
            begin = time.perf_counter_ns()
            await stub.Match(pb.MatchRequest(reading=plate_pb2.PlateReading(text=text)), metadata=metadata)
            samples.append(time.perf_counter_ns() - begin)
    return latency_summary(samples)


async def bench_peer(database_url: str, mix: list[str]) -> dict[str, Any] | None:
    """One SQL query per match (pg_trgm candidates + levenshtein), over the same entries table."""
    connection = await asyncpg.connect(database_url)
    try:
        available = {r["name"] for r in await connection.fetch("SELECT name FROM pg_available_extensions")}
        if not {"pg_trgm", "fuzzystrmatch"} <= available:
            return None
        await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm; CREATE EXTENSION IF NOT EXISTS fuzzystrmatch")
        started = time.perf_counter()
        await connection.execute(
            """CREATE INDEX bench_trgm ON hotlist.entries
                   USING gin (translate(target, 'ODQILZSBG', '000112586') gin_trgm_ops)"""
        )
        await connection.execute("ANALYZE hotlist.entries")
        index_s = time.perf_counter() - started
        statement = await connection.prepare(
            """SELECT entry_id FROM hotlist.entries
                WHERE translate(target, 'ODQILZSBG', '000112586') % translate($1, 'ODQILZSBG', '000112586')
                  AND levenshtein_less_equal(translate(target, 'ODQILZSBG', '000112586'),
                                             translate($1, 'ODQILZSBG', '000112586'), 1) <= 1"""
        )
        sample = mix[: min(len(mix), 2000)]
        samples: list[int] = []
        hits = 0
        for text in sample:
            begin = time.perf_counter_ns()
            rows = await statement.fetch(text)
            samples.append(time.perf_counter_ns() - begin)
            hits += bool(rows)
        summary = latency_summary(samples)
        summary.update(index_build_seconds=round(index_s, 1), queries=len(sample), queries_with_hits=hits)
        return summary
    finally:
        await connection.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """All stages; returns the results document."""
    entries = plates(args.entries, args.seed)
    mix = queries(entries, args.queries, args.seed)
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "entries": args.entries,
        "queries": args.queries,
    }
    name = f"anpr_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    database_url = with_database(args.database_url, name)
    token = uuid.uuid4().hex
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        csv_path = workdir / "entries.csv"
        csv_path.write_text("plate,reason\n" + "".join(f"{plate},bench\n" for plate in entries))
        process, address = await start_service(database_url, workdir, token)
        memory: dict[str, float] = {"empty_mb": await settled_resident_mb(process.pid)}
        result["resident_memory"] = memory
        try:
            async with grpc.aio.insecure_channel(address) as channel:
                stub = hotlist_service_pb2_grpc.HotlistServiceStub(channel)
                await stub.CreateHotlist(
                    pb.CreateHotlistRequest(
                        hotlist=hotlist_pb2.Hotlist(
                            name="bench", active=True, strictness=hotlist_pb2.MATCH_STRICTNESS_LENIENT
                        )
                    ),
                    metadata=(("authorization", f"Bearer {token}"),),
                )
            started = time.perf_counter()
            imported = await import_file(address, token, csv_path, "bench")
            import_s = time.perf_counter() - started
            result["import"] = {
                "seconds": round(import_s, 2),
                "rows_per_second": round(args.entries / import_s),
                "created": imported.created_count,
                "rejected": imported.rejected_count,
            }
            print(json.dumps({"import": result["import"]}), flush=True)
            memory["after_import_mb"] = await settled_resident_mb(process.pid)
            # A replica that starts with the list already in the database loads it in one go (the other path).
            process.terminate()
            await asyncio.wait_for(process.wait(), 30)
            (workdir / "ready.json").unlink()
            process, address = await start_service(database_url, workdir, token)
            memory["after_restart_mb"] = await settled_resident_mb(process.pid)
            print(json.dumps({"resident_memory": memory}), flush=True)
            if not args.memory_only:
                result["match_grpc"] = await bench_grpc_match(address, token, mix[: args.grpc_queries])
                print(json.dumps({"match_grpc": result["match_grpc"]}), flush=True)
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), 30)
    if not args.memory_only:
        result["match_index"] = bench_index(entries, mix)
        print(json.dumps({"match_index": result["match_index"]}), flush=True)
        peer = await bench_peer(database_url, mix)
        result["peer_postgresql_trgm_levenshtein"] = peer
        if peer is not None:
            index_p99 = result["match_index"]["lenient"]["p99_ms"]
            result["p99_ratio_peer_over_lenient_index"] = round(peer["p99_ms"] / index_p99, 1)
    admin = await asyncpg.connect(args.database_url)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()
    return result


def main() -> None:
    """Parse arguments, run, print and optionally save the results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--grpc-queries", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--database-url", default=os.environ.get("ANPR_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--memory-only", action="store_true", help="stop after the resident memory figures")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
