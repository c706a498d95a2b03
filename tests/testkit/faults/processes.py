"""The three services as real processes (``python -m anpr.<service>``) on fixed loopback ports.

Each service keeps its ports across restarts, as a pod behind a Service does, so its clients (ingest's channels,
the cameras, the alert subscriber) reconnect to the same address. Output goes to a log file per service, kept for
a failed run to be read.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from anpr.runtime.auth import Role
from testkit.ingest_env import unused_port
from testkit.polling import wait_until
from testkit.scrape import fetch_text

TOKEN = "faults-token"
# Where the `anpr` namespace package lives in a checkout (pyproject.toml's dev-mode-dirs).
CODE_ROOTS = (
    "src",
    "services/ingest",
    "services/recognize",
    "services/hotlist",
)  # one client holding every role: the harness plays cameras, operators and admins


def _python_path(code: Path | None) -> dict[str, str]:
    return {} if code is None else {"PYTHONPATH": os.pathsep.join(str(code / root) for root in CODE_ROOTS)}


def roles_of(code: Path | None) -> list[str]:
    """The roles the services of ``code`` know: a tokens file naming a role they do not know is refused."""
    if code is None:
        return [role.value for role in Role]
    listing = subprocess.run(
        [sys.executable, "-c", "from anpr.runtime.auth import Role; print(' '.join(r.value for r in Role))"],
        env={**os.environ, **_python_path(code)},
        check=True,
        capture_output=True,
        text=True,
    )
    return listing.stdout.split()


def write_tokens(directory: Path, code: Path | None = None) -> tuple[Path, Path]:
    """The tokens file every service reads, and the file holding the token ingest presents to its peers."""
    tokens = directory / "tokens.json"
    clients = [{"identity": "faults", "roles": roles_of(code), "token": TOKEN}]
    tokens.write_text(json.dumps({"clients": clients}))
    service_token = directory / "service-token"
    service_token.write_text(TOKEN)
    return tokens, service_token


@dataclass
class ServiceProcess:
    """One service: its settings (environment), ports, and the running process if any."""

    name: str  # ingest, recognize or hotlist
    settings: dict[str, str]  # ANPR_<NAME>_* values without the prefix, lower case
    log_dir: Path
    code: Path | None = None  # run the services of another checkout (see Cluster.create)
    grpc_port: int = field(default_factory=unused_port)
    metrics_port: int = field(default_factory=unused_port)
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0  # time.time() when the last start became ready
    starts: int = 0

    @property
    def address(self) -> str:
        """host:port of the gRPC server."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def target(self) -> str:
        """A dns:/// target, as the services are configured in production."""
        return f"dns:///{self.address}"

    @property
    def metrics_url(self) -> str:
        """The Prometheus endpoint."""
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def ready_file(self) -> Path:
        """Written by the service once it serves."""
        return self.log_dir / f"{self.name}.ready.json"

    @property
    def running(self) -> bool:
        """Whether the process exists and has not exited."""
        return self.process is not None and self.process.returncode is None

    def _environment(self) -> dict[str, str]:
        prefix = f"ANPR_{self.name.upper()}_"
        values = {
            "grpc_host": "127.0.0.1",
            "grpc_port": str(self.grpc_port),
            "metrics_host": "127.0.0.1",
            "metrics_port": str(self.metrics_port),
            "ready_file": str(self.ready_file),
            "log_format": "text",
            "log_level": "WARNING",
            **self.settings,
        }
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("ANPR_")}
        inherited.update(_python_path(self.code))
        return {**inherited, **{prefix + key.upper(): value for key, value in values.items()}}

    async def start(self, seconds: float = 60.0) -> float:
        """Start the process and wait until it serves; returns the time (time.time()) it became ready."""
        assert not self.running, f"{self.name} is already running"
        self.ready_file.unlink(missing_ok=True)
        self.starts += 1
        log = (self.log_dir / f"{self.name}.{self.starts}.log").open("wb")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", f"anpr.{self.name}", env=self._environment(), stdout=log, stderr=log
            )
        finally:
            log.close()  # the child holds its own descriptor
        process = self.process

        def ready() -> bool:
            assert process.returncode is None, f"{self.name} exited with {process.returncode}; see {log.name}"
            return self.ready_file.exists()

        await wait_until(ready, seconds=seconds, interval=0.02)
        self.started_at = time.time()
        return self.started_at

    async def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def terminate(self, seconds: float = 60.0) -> float:
        """SIGTERM, as an orchestrator stops a pod; waits for the exit and returns how long it took (seconds)."""
        began = time.monotonic()
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(seconds):
                    await self.process.wait()
            except TimeoutError:
                await self.kill()
        return time.monotonic() - began

    async def metrics(self) -> str:
        """The current Prometheus scrape ('' while the process is down)."""
        if not self.running:
            return ""
        try:
            return await fetch_text(self.metrics_url)
        except OSError:
            return ""


@dataclass
class Cluster:
    """The three services around a private PostgreSQL (passed as its URL; see :mod:`testkit.faults.postgres`)."""

    recognize: ServiceProcess
    hotlist: ServiceProcess
    ingest: ServiceProcess
    spool_path: Path

    @classmethod
    def create(cls, directory: Path, database_url: str, model_dir: Path, code: Path | None = None) -> Cluster:
        """Settings for all three in ``directory`` (tokens, spool, logs); nothing is started.

        ``code``: a checkout (or ``git archive`` of a commit) whose services run instead of the installed ones, to
        measure an older or newer version with the same harness; None runs this working tree.
        """
        tokens, service_token = write_tokens(directory, code)
        common = {"auth_tokens_file": str(tokens)}
        recognize = ServiceProcess(
            "recognize", {**common, "model_dir": str(model_dir), "model_poll_seconds": "0"}, directory, code
        )
        hotlist = ServiceProcess("hotlist", {**common, "database_url": database_url}, directory, code)
        spool = directory / "ingest-spool.sqlite3"
        ingest = ServiceProcess(
            "ingest",
            {
                **common,
                "database_url": database_url,
                "recognize_target": recognize.target,
                "hotlist_target": hotlist.target,
                "service_token_file": str(service_token),
                "spool_path": str(spool),
            },
            directory,
            code,
        )
        return cls(recognize, hotlist, ingest, spool)

    @property
    def services(self) -> tuple[ServiceProcess, ServiceProcess, ServiceProcess]:
        """In start-up order: ingest needs the other two to be useful."""
        return (self.recognize, self.hotlist, self.ingest)

    async def start(self) -> None:
        """Start every service that is not running (recognize and hotlist together, then ingest)."""
        await asyncio.gather(*(s.start() for s in (self.recognize, self.hotlist) if not s.running))
        if not self.ingest.running:
            await self.ingest.start()

    async def stop(self) -> None:
        """SIGTERM every service, ingest first (it delivers to the others while it stops)."""
        for service in reversed(self.services):
            await service.terminate()
