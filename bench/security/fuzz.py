"""Fuzzing, long run: N cases per service against real in-process servers, counted by service and status code.

The same strategies and property as the CI test (``tests/testkit/fuzz.py``): generated, byte-flipped and garbage
requests for every RPC that reflection lists, from every role, an unknown token and no token. Faults (UNKNOWN,
INTERNAL, DATA_LOSS) and hangs are counted, not stopped at, and a few examples of each are kept; the health check
runs every 500 cases and at the end.

    export ANPR_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test   # a server it may create databases on
    python bench/security/fuzz.py --cases 100000                # every service
    python bench/security/fuzz.py --cases 5000 --service hotlist --seed 7

Writes ``bench/results/fuzz_<date>.json`` and prints counts by service and code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import grpc.aio
from hypothesis import HealthCheck, given, seed, settings

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # the fuzzer lives with the tests' helpers

from anpr.runtime.auth import Role  # noqa: E402
from anpr.runtime.server import ServiceServer  # noqa: E402
from anpr.runtime.settings import load_settings  # noqa: E402
from testkit import fuzz  # noqa: E402
from testkit.fuzz_targets import SERVICES, access_policy  # noqa: E402
from testkit.fuzz_targets import seed as seed_state  # noqa: E402
from testkit.plate_models import build_constant_reader, build_content_detector, write_manifest  # noqa: E402

HEALTH_EVERY = 500


def _tokens(directory: Path) -> tuple[dict[str, str], Path]:
    tokens = {role.value: f"fuzz-{role.value}-{uuid.uuid4().hex}" for role in Role}
    clients = [{"identity": f"fuzz-{role}", "roles": [role], "token": token} for role, token in tokens.items()]
    path = directory / "tokens.json"
    path.write_text(json.dumps({"clients": clients}))
    tokens[fuzz.UNKNOWN_TOKEN] = f"fuzz-unknown-{uuid.uuid4().hex}"
    return tokens, path


def _models(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    reader = build_constant_reader(directory / "reader.onnx", "CA123456")
    detector = build_content_detector(directory / "detector.onnx")
    write_manifest(directory, detector=detector, reader=reader, config=reader.with_suffix(".yaml"))
    return directory


async def _database(server_url: str, stack: AsyncExitStack) -> str:
    name = f"anpr_fuzz_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()

    async def drop() -> None:
        connection = await asyncpg.connect(server_url)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    stack.push_async_callback(drop)
    return server_url.rsplit("/", 1)[0] + f"/{name}"


async def _start(service: str, stack: AsyncExitStack, environment: dict[str, str], database: str | None) -> Any:
    import importlib

    settings_class = getattr(importlib.import_module(f"anpr.{service}.settings"), f"{service.capitalize()}Settings")
    build = importlib.import_module(f"anpr.{service}.server").build
    values = dict(environment)
    if database is not None:
        values["database_url"] = database
    settings = load_settings(settings_class, environ={}, **values)
    server: ServiceServer = await stack.enter_async_context(build(settings))
    stack.push_async_callback(server.stop, 1.0)
    await server.start()
    return server


def _fuzz(address: str, service: str, tokens: dict[str, str], cases: int, seed_value: int) -> dict[str, Any]:
    methods = fuzz.discover(address)
    policy = access_policy(service)
    roles = sorted({r for allowed in policy.values() for r in allowed} | {r.value for r in Role})
    tally = fuzz.Tally()
    unhealthy = 0
    with grpc.insecure_channel(address) as channel:

        @seed(seed_value)
        @settings(max_examples=cases, database=None, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=fuzz.cases(methods, policy, roles))
        def run(case: fuzz.Case) -> None:
            nonlocal unhealthy
            tally.add(case, fuzz.send(channel, case, tokens))
            if tally.cases % HEALTH_EVERY == 0:
                unhealthy += not fuzz.serving(channel)
                print(f"  {service}: {tally.cases} cases, {dict(tally.codes)}", flush=True)

        started = time.perf_counter()
        run()
        healthy_at_end = fuzz.serving(channel)
    return {
        "service": service,
        "methods": len(methods),
        "cases": tally.cases,
        "seconds": round(time.perf_counter() - started, 1),
        "codes": dict(tally.codes.most_common()),
        "faults": sum(tally.codes[c] for c in fuzz.SERVER_FAULTS),
        "hangs": tally.hangs,
        "failed_health_checks": unhealthy + (not healthy_at_end),
        "by_method": {m: dict(c.most_common()) for m, c in sorted(tally.by_method.items())},
        "fault_examples": tally.faults,
    }


async def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Start each service in turn, seed it, fuzz it from a worker thread, and collect the tallies."""
    server_url = args.database_url or os.environ.get("ANPR_TEST_DATABASE_URL")
    if not server_url:
        raise SystemExit("set ANPR_TEST_DATABASE_URL (or --database-url) to a PostgreSQL server")
    fuzz.prepare_images()
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        tokens, tokens_file = _tokens(directory)
        environment = {
            "grpc_host": "127.0.0.1",
            "grpc_port": "0",
            "metrics_host": "127.0.0.1",
            "metrics_port": "0",
            "auth_tokens_file": str(tokens_file),
            "shutdown_grace_seconds": "2",
            "log_format": "text",
            "log_level": "ERROR",
        }
        for service in args.service or SERVICES:
            async with AsyncExitStack() as stack:
                values = dict(environment)
                database = None if service == "recognize" else await _database(server_url, stack)
                if service == "recognize":
                    values.update(model_dir=str(_models(directory / "models")), model_poll_seconds="0")
                server = await _start(service, stack, values, database)
                async with grpc.aio.insecure_channel(server.address) as channel:
                    await seed_state(service, channel, tokens)
                print(f"{service}: {args.cases} cases", flush=True)
                results.append(await asyncio.to_thread(_fuzz, server.address, service, tokens, args.cases, args.seed))
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "cases_per_service": args.cases,
        "seed": args.seed,
        "services": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000, help="cases per service")
    parser.add_argument("--service", action="append", choices=SERVICES, help="only these services (repeatable)")
    parser.add_argument("--seed", type=int, default=19, help="hypothesis seed (runs are repeatable)")
    parser.add_argument("--database-url", help="PostgreSQL server URL (default: ANPR_TEST_DATABASE_URL)")
    parser.add_argument("--out", type=Path, help="result file (default: bench/results/fuzz_<date>.json)")
    args = parser.parse_args()
    document = asyncio.run(run_all(args))
    out = args.out or ROOT / "bench" / "results" / f"fuzz_{document['date']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\n{'service':<10} {'cases':>8} {'faults':>7} {'hangs':>6}  codes")
    for result in document["services"]:
        codes = ", ".join(f"{code} {count}" for code, count in result["codes"].items())
        print(f"{result['service']:<10} {result['cases']:>8} {result['faults']:>7} {result['hangs']:>6}  {codes}")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
