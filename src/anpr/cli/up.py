"""``anpr up``: run the whole suite on one machine, as separate supervised processes, on embedded defaults.

It starts an embedded PostgreSQL unless a database URL is given, writes development tokens (one per role, kept
across restarts: they are read back from the profile), starts ingest, recognize and hotlist as child processes,
waits until each reports where it listens, prints that (as one JSON line with ``--json``), and then supervises: a
child that dies is reported with its exit status and the suite is stopped, never silently restarted. Once up, it
writes ``<data-dir>/profile.json`` (mode 0600: addresses, TLS files and tokens) for the operator commands
(:mod:`anpr.cli.profile`). SIGINT or SIGTERM stops every child gracefully.

Transport security by default: a development CA (kept in ``<data-dir>/tls``) issues a certificate per service and
one for clients at every start; recognize and hotlist require a client certificate (mutual TLS: ingest presents
its own), ingest serves TLS to cameras and edge agents. ``--plaintext`` turns TLS off (and allows plaintext on a
non-loopback ``--host``, which the services otherwise refuse).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anpr.cli.devca import DevelopmentCA
from anpr.cli.profile import write_profile
from anpr.cli.token import new_token
from anpr.runtime.auth import Role, token_digest
from anpr.runtime.database import EmbeddedPostgres
from anpr.runtime.provisioning import DatabaseUrls, prepare_embedded
from anpr.runtime.settings import DEFAULT_DATA_DIR
from anpr.runtime.tls import is_loopback_host

SERVICES = ("recognize", "hotlist", "ingest")  # start order: dependencies first
DATABASE_SERVICES = frozenset({"hotlist", "ingest"})
MUTUAL_TLS_SERVICES = frozenset({"recognize", "hotlist"})  # called by services only (and operators' tools)
READY_TIMEOUT_SECONDS = 120.0
CHILD_GRACE_SECONDS = 10.0


class UpError(Exception):
    """The suite could not be started or a service died; the message says which and why."""


@dataclass
class Child:
    """One supervised service process."""

    name: str
    process: asyncio.subprocess.Process
    ready_file: Path
    ready: dict[str, Any] = field(default_factory=dict)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``anpr up``."""
    parser.add_argument("--json", action="store_true", help="print one JSON line with addresses and tokens first")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR / "up", help="state of the local suite")
    parser.add_argument("--host", default="127.0.0.1", help="address every service binds")
    parser.add_argument("--database-url", default=os.environ.get("ANPR_DATABASE_URL"), help="skip the embedded DB")
    parser.add_argument(
        "--plaintext",
        action="store_true",
        help="no TLS (default: a development CA, mutual TLS between services, TLS to every client)",
    )
    for name in SERVICES:
        parser.add_argument(f"--{name}-port", type=int, default=0, help=f"gRPC port of {name} (0: a free port)")
        parser.add_argument(f"--{name}-metrics-port", type=int, default=0, help=f"metrics port of {name}")


def write_dev_tokens(path: Path, existing: dict[str, str] | None = None) -> dict[str, str]:
    """A token per role, written as a secrets file (digests only) that only the current user can read.

    ``existing`` tokens (the previous start's, from the profile) are kept, so that agents and scripts holding them
    still get in after a restart; only a role without one gets a fresh token.

    Each role gets a client of its own, as in production: ingest presents ``ingest-service`` to its peers, and a
    camera token (identity ``dev-camera``) may only submit for cameras labelled ``principal: dev-camera``.
    """
    kept = existing or {}
    tokens = {role.value: kept.get(role.value) or new_token() for role in Role}
    document = {
        "clients": [
            {"identity": f"dev-{role}", "roles": [role], "token_sha256": token_digest(tokens[role])} for role in tokens
        ]
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(document, indent=2))
    return tokens


def _child_environment(
    args: argparse.Namespace, name: str, tokens_file: Path, ready: Path, db: DatabaseUrls | None, peers: dict[str, str]
) -> dict[str, str]:
    prefix = f"ANPR_{name.upper()}_"
    # Drop inherited settings of the suite's services so that only what `up` decides (plus the operator's
    # deliberate variables for this service) applies.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANPR_") or k.startswith(prefix)}
    env.update(
        {
            prefix + "GRPC_HOST": args.host,
            prefix + "GRPC_PORT": str(getattr(args, f"{name}_port")),
            prefix + "METRICS_HOST": args.host,
            prefix + "METRICS_PORT": str(getattr(args, f"{name}_metrics_port")),
            prefix + "AUTH_TOKENS_FILE": str(tokens_file),
            prefix + "READY_FILE": str(ready),
        }
    )
    env.setdefault(prefix + "LOG_FORMAT", "text")
    if name in DATABASE_SERVICES and db is not None:
        env[prefix + "DATABASE_URL"] = db.runtime
        if db.migration is not None:
            env[prefix + "MIGRATION_DATABASE_URL"] = db.migration
    if name == "ingest":
        # Ingest calls the other two with the development service token, and spools under the suite's data dir.
        env[prefix + "RECOGNIZE_TARGET"] = f"dns:///{peers['recognize']}"
        env[prefix + "HOTLIST_TARGET"] = f"dns:///{peers['hotlist']}"
        env[prefix + "SERVICE_TOKEN_FILE"] = str(args.data_dir / "service-token")
        env[prefix + "SPOOL_PATH"] = str(args.data_dir / "ingest-spool.sqlite3")
    return env


def issue_development_certificates(data_dir: Path, host: str) -> tuple[DevelopmentCA, dict[str, dict[str, str]]]:
    """The development CA and, per service, the ``ANPR_<SERVICE>_TLS_*`` (and ingest's client TLS) variables."""
    ca = DevelopmentCA.open(data_dir / "tls")
    hosts = [host] if host not in {"0.0.0.0", "::", "[::]"} else []
    environments: dict[str, dict[str, str]] = {}
    for name in SERVICES:
        issued = ca.issue(name, hosts)
        prefix = f"ANPR_{name.upper()}_"
        env = {prefix + "TLS_CERT_FILE": str(issued.cert_file), prefix + "TLS_KEY_FILE": str(issued.key_file)}
        if name in MUTUAL_TLS_SERVICES:
            env[prefix + "TLS_CLIENT_CA_FILE"] = str(ca.cert_file)
        if name == "ingest":
            # Ingest's own certificate is its identity towards recognize and hotlist.
            env[prefix + "CLIENT_TLS_CA_FILE"] = str(ca.cert_file)
            env[prefix + "CLIENT_TLS_CERT_FILE"] = str(issued.cert_file)
            env[prefix + "CLIENT_TLS_KEY_FILE"] = str(issued.key_file)
            if not hosts:  # peers are reached at the wildcard address: expect the local name instead
                env[prefix + "RECOGNIZE_TLS_SERVER_NAME"] = "localhost"
                env[prefix + "HOTLIST_TLS_SERVER_NAME"] = "localhost"
        environments[name] = env
    ca.issue("client", hosts)
    return ca, environments


def _tls_summary(ca: DevelopmentCA | None) -> dict[str, Any] | None:
    if ca is None:
        return None
    return {
        "ca_file": str(ca.cert_file),
        "client_cert_file": str(ca.directory / "client.pem"),
        "client_key_file": str(ca.directory / "client.key"),
        "mutual": sorted(MUTUAL_TLS_SERVICES),
    }


async def _start_child(
    args: argparse.Namespace,
    name: str,
    tokens_file: Path,
    db: DatabaseUrls | None,
    peers: dict[str, str],
    tls_env: dict[str, str] | None = None,
) -> Child:
    ready = args.data_dir / f"{name}.ready.json"
    ready.unlink(missing_ok=True)
    env = _child_environment(args, name, tokens_file, ready, db, peers)
    if tls_env is not None:
        env.update(tls_env)
    elif not is_loopback_host(args.host):
        env[f"ANPR_{name.upper()}_ALLOW_PLAINTEXT"] = "true"  # --plaintext is the explicit allowance
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        f"anpr.{name}",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=sys.stderr.fileno(),  # keep our stdout for the --json line
        stderr=None,
    )
    return Child(name=name, process=process, ready_file=ready)


async def _wait_ready(child: Child) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if child.process.returncode is not None:
            raise UpError(f"{child.name} exited with status {child.process.returncode} while starting (see its log)")
        if child.ready_file.exists():
            child.ready = json.loads(child.ready_file.read_text())
            return
        await asyncio.sleep(0.05)
    raise UpError(f"{child.name} did not become ready within {READY_TIMEOUT_SECONDS:.0f} s")


async def _stop_children(children: list[Child]) -> None:
    for child in children:
        if child.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
    for child in children:
        try:
            await asyncio.wait_for(child.process.wait(), CHILD_GRACE_SECONDS + 5)
        except TimeoutError:
            print(f"anpr up: {child.name} did not stop in time; killing it", file=sys.stderr)
            with contextlib.suppress(ProcessLookupError):
                child.process.kill()
            await child.process.wait()


def _summary(
    children: list[Child], tokens: dict[str, str], database: str, data_dir: Path, ca: DevelopmentCA | None = None
) -> dict[str, Any]:
    return {
        "services": {
            child.name: {"grpc_address": child.ready["grpc_address"], "metrics_url": child.ready["metrics_url"]}
            for child in children
        },
        "tokens": tokens,
        "database": database,
        "data_dir": str(data_dir),
        "tls": _tls_summary(ca),
    }


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary), flush=True)
        return
    print("ANPR suite is up (Ctrl-C stops it):")
    for name, where in summary["services"].items():
        print(f"  {name:<10} gRPC {where['grpc_address']:<22} metrics {where['metrics_url']}")
    print(f"  database   {summary['database']}")
    tls = summary.get("tls")
    if tls:
        print("  TLS: mutual between services, to every client; the CLI and other clients need:")
        print(f"    export ANPR_TLS_CA_FILE={tls['ca_file']}")
        print(f"    export ANPR_TLS_CERT_FILE={tls['client_cert_file']}  # {' and '.join(tls['mutual'])} require it")
        print(f"    export ANPR_TLS_KEY_FILE={tls['client_key_file']}")
    else:
        print("  TLS: off (--plaintext)")
    print(f"  profile    {summary['profile']} (the operator commands read it: anpr cameras, hotlist, alerts, ...)")
    print("  development tokens (send as 'authorization: Bearer <token>'; kept across restarts):")
    for role, value in summary["tokens"].items():
        print(f"    {role:<14} {value}")
    sys.stdout.flush()


def previous_tokens(profile: Path) -> dict[str, str]:
    """The tokens of the profile an earlier start wrote (empty when there is none or it cannot be read)."""
    try:
        tokens = json.loads(profile.read_text()).get("tokens", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in tokens.items() if isinstance(v, str) and v} if isinstance(tokens, dict) else {}


async def _supervise(args: argparse.Namespace, database_url: DatabaseUrls | None, database_label: str) -> int:
    args.data_dir.mkdir(parents=True, exist_ok=True)
    tokens_file = args.data_dir / "dev-tokens.json"
    profile = args.data_dir / "profile.json"
    tokens = write_dev_tokens(tokens_file, previous_tokens(profile))
    service_token = args.data_dir / "service-token"
    service_token.touch(mode=0o600)
    service_token.write_text(tokens[Role.INGEST_SERVICE.value])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    children: list[Child] = []
    ca: DevelopmentCA | None = None
    tls_env: dict[str, dict[str, str]] = {}
    if not args.plaintext:
        ca, tls_env = await asyncio.to_thread(issue_development_certificates, args.data_dir, args.host)
    try:
        peers: dict[str, str] = {}
        for name in SERVICES:
            children.append(
                await _start_child(args, name, tokens_file, database_url, peers, tls_env.get(name) if ca else None)
            )
            await _wait_ready(children[-1])
            peers[name] = children[-1].ready["grpc_address"]
        summary = _summary(children, tokens, database_label, args.data_dir, ca)
        write_profile(profile, {**summary, "profile": str(profile)})  # what the operator commands read
        summary["profile"] = str(profile)
        _print_summary(summary, args.json)
        waits = {asyncio.ensure_future(child.process.wait()): child for child in children}
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait([stopper, *waits], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        for task in waits:
            task.cancel()
        crashed = [waits[task] for task in done if task in waits]
        if crashed:
            child = crashed[0]
            raise UpError(
                f"{child.name} exited unexpectedly with status {child.process.returncode}; stopping the suite"
            )
        print("anpr up: stopping", file=sys.stderr)
        return 0
    finally:
        await _stop_children(children)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _up(args: argparse.Namespace) -> int:
    if args.database_url:
        urls = DatabaseUrls(args.database_url, None)
        return await _supervise(args, urls, "external (from --database-url)")
    embedded = EmbeddedPostgres(args.data_dir / "postgres")
    url = await asyncio.to_thread(embedded.start)
    try:
        # The services serve as a role without superuser that owns nothing; the owner role migrates.
        urls = await prepare_embedded(url, tuple(sorted(DATABASE_SERVICES)))  # schemas are named after them
        return await _supervise(args, urls, f"embedded PostgreSQL in {embedded.data_dir}")
    finally:
        await asyncio.to_thread(embedded.stop)


def run(args: argparse.Namespace) -> int:
    """Run the suite until interrupted; 0 on a clean stop, 1 when a service failed."""
    try:
        return asyncio.run(_up(args))
    except Exception as exc:  # a service died, or e.g. the embedded database could not start: say so plainly
        print(f"anpr up: {exc}", file=sys.stderr)
        return 1
