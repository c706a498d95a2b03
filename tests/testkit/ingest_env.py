"""Everything an ingest test needs around the service: the real hotlist and recognize services, a spool, metadata.

The hotlist service runs on the test's database (its own schema beside ingest's); what it stored is read back from
``hotlist.reads``. The recognize service runs the real pipeline on the scene model set (:mod:`testkit.scenes`):
rendered plates are read for real.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import grpc.aio

from anpr.api.common.v1 import plate_event_pb2
from anpr.api.ingest.v1 import camera_pb2, ingest_service_pb2, ingest_service_pb2_grpc
from anpr.ingest.server import build
from anpr.ingest.settings import IngestSettings
from anpr.runtime.server import ServiceServer
from anpr.runtime.settings import load_settings
from testkit.polling import wait_until_async
from testkit.scrape import fetch_text
from testkit.services import StartService

PURPOSE = "Test of the ingest pipeline"  # a purpose for GetPlateEvents (every lookup states one)
CAMERA_IDENTITY = "test-camera"  # identity of the `camera` token in the tests' tokens file (tests/conftest.py)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata presenting a token."""
    return (("authorization", f"Bearer {token}"),)


def unused_port() -> int:
    """A loopback port nothing listens on (bound once by the system, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class StoredRead:
    """A row of ``hotlist.reads``: an event at the highest revision the hotlist service stored."""

    event_id: str
    revision: int
    plate: str
    store_time: datetime  # when the event id was first stored (the start of that ReportReads transaction)
    update_time: datetime  # when a higher revision last replaced it (equal to store_time if never)
    event: plate_event_pb2.PlateEvent


async def stored_reads(database_url: str) -> list[StoredRead]:
    """Every stored read, in the order the hotlist service first stored them."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT event_id, revision, plate, store_time, update_time, event FROM hotlist.reads"
            " ORDER BY store_time, event_id"
        )
    finally:
        await connection.close()
    return [
        StoredRead(
            row["event_id"],
            row["revision"],
            row["plate"],
            row["store_time"],
            row["update_time"],
            plate_event_pb2.PlateEvent.FromString(row["event"]),
        )
        for row in rows
    ]


def metric_value(scraped: str, sample: str) -> float:
    """The value of one sample (name with labels, exactly as exposed) in a Prometheus text scrape; 0 if absent."""
    for line in scraped.splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    return 0.0


@dataclass
class IngestEnvironment:
    """The real hotlist and recognize services plus the settings that point ingest at them."""

    start_service: StartService  # starts a service on the test's database
    start_recognize_service: StartService  # starts the recognize service (which has no database)
    model_dir: Path  # the scene model set (testkit.scenes)
    database_url: str
    tokens: dict[str, str]
    spool_path: Path
    service_token_file: Path
    base_settings: dict[str, str] = field(default_factory=dict)
    servers: list[ServiceServer] = field(default_factory=list)
    hotlist_port: int = 0
    _hotlist: ServiceServer | None = None
    _recognize: ServiceServer | None = None

    async def start_dependencies(self, *, hotlist: bool = True, recognize: bool = True) -> None:
        """Start the hotlist and recognize services (once each).

        ``start_ingest`` and ``run_ingest`` do this first, for each service whose target the test does not give.
        """
        if hotlist and self._hotlist is None:
            self._hotlist = await self.start_service("hotlist")
            self.hotlist_port = self._hotlist.port
        if recognize and self._recognize is None:
            self._recognize = await self.start_recognize()

    async def _dependencies_of(self, overrides: dict[str, Any]) -> None:
        await self.start_dependencies(
            hotlist="hotlist_target" not in overrides, recognize="recognize_target" not in overrides
        )

    @property
    def hotlist(self) -> ServiceServer:
        """The (latest) hotlist service."""
        assert self._hotlist is not None, "start_dependencies() first"
        return self._hotlist

    @property
    def recognize(self) -> ServiceServer:
        """The recognize service."""
        assert self._recognize is not None, "start_dependencies() first"
        return self._recognize

    @property
    def hotlist_target(self) -> str:
        """A dns:/// target, as ingest is configured in production."""
        return f"dns:///127.0.0.1:{self.hotlist.port if self._hotlist is not None else self.hotlist_port}"

    @property
    def recognize_target(self) -> str:
        """A dns:/// target of the recognize service."""
        return f"dns:///127.0.0.1:{self.recognize.port}"

    async def stop_hotlist(self) -> None:
        """The hotlist service goes away (its port refuses connections)."""
        await self.hotlist.stop(0.2)

    async def start_hotlist(self) -> None:
        """A new hotlist service on the same address and database."""
        self._hotlist = await self.start_service("hotlist", grpc_port=str(self.hotlist_port))

    async def start_recognize(self, **overrides: Any) -> ServiceServer:
        """Another recognize service on the scene model set (settings overridable), stopped after the test."""
        return await self.start_recognize_service("recognize", **{"model_dir": str(self.model_dir), **overrides})

    async def reads(self) -> list[StoredRead]:
        """What the hotlist service stored, in the order it first stored each event."""
        return await stored_reads(self.database_url)

    async def wait_for_reads(
        self, condition: Callable[[list[StoredRead]], bool], seconds: float = 15.0
    ) -> list[StoredRead]:
        """Poll ``hotlist.reads`` until ``condition`` holds for them; the reads then. TimeoutError after ``seconds``."""
        latest: list[StoredRead] = []

        async def holds() -> bool:
            nonlocal latest
            latest = await self.reads()
            return condition(latest)

        await wait_until_async(holds, seconds=seconds)
        return latest

    async def wait_for_count(self, count: int, seconds: float = 15.0) -> list[StoredRead]:
        """Until ``hotlist.reads`` holds at least ``count`` events."""
        return await self.wait_for_reads(lambda reads: len(reads) >= count, seconds)

    async def wait_for_revisions(self, revisions: dict[str, int], seconds: float = 15.0) -> list[StoredRead]:
        """Until the reads with these plates are stored at (at least) these revisions."""

        def stored(reads: list[StoredRead]) -> bool:
            found = {r.plate: r.revision for r in reads}
            return all(found.get(plate, 0) >= revision for plate, revision in revisions.items())

        return await self.wait_for_reads(stored, seconds)

    async def wait_for_finals(self, plates: list[str], seconds: float = 20.0) -> list[StoredRead]:
        """Until the hotlist service stored a FINAL event for each of these plates."""

        def final(reads: list[StoredRead]) -> bool:
            return {r.plate for r in reads if r.event.stage == plate_event_pb2.PLATE_EVENT_STAGE_FINAL} >= set(plates)

        return await self.wait_for_reads(final, seconds)

    async def recognized_images(self) -> float:
        """Images the recognize services of this process received by Recognize (scraped from its metrics endpoint).

        The registry is per process, so tests compare the value before and after what they do.
        """
        scraped = await fetch_text(f"http://127.0.0.1:{self.recognize.metrics_port}/metrics")
        return metric_value(scraped, 'anpr_recognize_images_total{rpc="Recognize"}')

    def _values(self, overrides: dict[str, Any]) -> dict[str, Any]:
        targets = {
            "recognize_target": overrides.get("recognize_target") or self.recognize_target,
            "hotlist_target": overrides.get("hotlist_target") or self.hotlist_target,
        }
        return {
            **targets,
            "service_token_file": str(self.service_token_file),
            "spool_path": str(self.spool_path),
            "delivery_backoff_max_seconds": "0.5",
            "recognize_batch_wait_seconds": "0.01",
            # Pulled sources in tests: local MJPEG servers and videos written under the test's directory.
            "source_allowed_networks": "127.0.0.0/8",
            "file_source_dir": str(self.spool_path.parent),
            **overrides,
        }

    async def start_ingest(self, *, dependencies: bool = True, **overrides: Any) -> ServiceServer:
        """A started ingest service wired to the real services (started first), stopped after the test.

        ``dependencies=False`` is for tests in which ingest never calls either service (the camera registry): it
        then points at an address where nothing listens, and neither service is started.
        """
        if dependencies:
            await self._dependencies_of(overrides)
        else:
            nowhere = f"dns:///127.0.0.1:{unused_port()}"
            overrides = {"recognize_target": nowhere, "hotlist_target": nowhere, **overrides}
        server = await self.start_service("ingest", **self._values(overrides))
        self.servers.append(server)
        return server

    @asynccontextmanager
    async def run_ingest(self, **overrides: Any) -> AsyncIterator[ServiceServer]:
        """An ingest service for the duration of a block (to stop and start it again within a test)."""
        await self._dependencies_of(overrides)
        settings = load_settings(IngestSettings, environ={}, **{**self.base_settings, **self._values(overrides)})
        async with build(settings) as server:
            await server.start()
            try:
                yield server
            finally:
                await server.stop(1.0)

    def metadata(self, role: str) -> tuple[tuple[str, str], ...]:
        """Call metadata for a role's token."""
        return bearer(self.tokens[role])


def stub(channel: grpc.aio.Channel) -> ingest_service_pb2_grpc.IngestServiceAsyncStub:
    """An IngestService stub."""
    return ingest_service_pb2_grpc.IngestServiceStub(channel)


def fixed_camera(camera_id: str, **fields: Any) -> camera_pb2.Camera:
    """A valid fixed camera."""
    camera = camera_pb2.Camera(camera_id=camera_id, kind=camera_pb2.CAMERA_KIND_FIXED, display_name=camera_id, **fields)
    if not camera.HasField("location"):
        camera.location.latitude, camera.location.longitude = -33.92, 18.42
    return camera


async def register(
    ingest: ingest_service_pb2_grpc.IngestServiceAsyncStub, env: IngestEnvironment, camera: camera_pb2.Camera
) -> camera_pb2.Camera:
    """Register a camera as an ingest administrator, bound to the test camera token's identity unless the camera
    names its own ``principal`` (camera tokens may only submit for cameras bound to them)."""
    if "principal" not in camera.labels:
        camera.labels["principal"] = CAMERA_IDENTITY
    reply = await ingest.RegisterCamera(
        ingest_service_pb2.RegisterCameraRequest(camera=camera), metadata=env.metadata("ingest-admin")
    )
    return reply.camera
