"""The faults, and one runner that loads the system, injects a fault, waits for quiescence and reports.

A scenario never sleeps for a fixed time to let the system finish: after the cameras stopped it waits until every
captured frame was answered, ingest's spool holds nothing of these cameras, the stored events stopped changing for
a while, and the subscriber has every alert hotlist stored; each wait is bounded by a generous timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc.aio

from anpr.api.common.v1 import image_pb2
from anpr.api.hotlist.v1 import hotlist_pb2, hotlist_service_pb2, hotlist_service_pb2_grpc
from anpr.api.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from anpr.api.recognize.v1 import recognition_pb2, recognize_service_pb2, recognize_service_pb2_grpc
from testkit.faults.alerts import AlertSubscriber
from testkit.faults.load import Fleet, LoadShape, Pass, plan
from testkit.faults.postgres import PrivatePostgres
from testkit.faults.processes import TOKEN, Cluster
from testkit.faults.report import Report, build_report, spool_counts, stored_events
from testkit.ingest_env import bearer, fixed_camera
from testkit.polling import wait_until, wait_until_async
from testkit.scenes import scene_model_dir

HOTLIST = "faults"
METADATA = bearer(TOKEN)
# The harness's own channels reconnect within a second, as an edge agent's do; gRPC's default backoff grows to
# 120 s and would measure the client, not the services.
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    # gRPC core takes this as the connect timeout, not as a backoff: 100 ms failed calls to a live service on a
    # loaded 2-core machine ("timed out before receiving SETTINGS frame"); a dead port is refused at once anyway.
    ("grpc.min_reconnect_backoff_ms", 5000),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
QUIET_SECONDS = 4.0  # no stored event changed for this long: ingest's passes ended (1.5 s track timeout) and left
_runs = itertools.count(1)


@dataclass
class FaultEnvironment:
    """A private PostgreSQL, the three services, and the harness's channels to them."""

    postgres: PrivatePostgres
    cluster: Cluster
    ingest: ingest_service_pb2_grpc.IngestServiceAsyncStub
    hotlist: hotlist_service_pb2_grpc.HotlistServiceAsyncStub
    recognize: recognize_service_pb2_grpc.RecognizeServiceAsyncStub


@asynccontextmanager
async def fault_environment(directory: Path, code: Path | None = None) -> AsyncIterator[FaultEnvironment]:
    """Start everything in ``directory`` (logs stay there); stop and delete the database afterwards. ``code``: see
    :meth:`Cluster.create`."""
    async with AsyncExitStack() as stack:
        postgres = PrivatePostgres()
        stack.callback(postgres.destroy)
        await asyncio.to_thread(postgres.create)
        await postgres.start_async()
        cluster = Cluster.create(directory, postgres.url, scene_model_dir(directory / "models"), code)
        stack.push_async_callback(cluster.stop)
        await cluster.start()
        channels = []
        for service in (cluster.ingest, cluster.hotlist, cluster.recognize):
            channels.append(
                await stack.enter_async_context(grpc.aio.insecure_channel(service.address, CHANNEL_OPTIONS))
            )
        environment = FaultEnvironment(
            postgres,
            cluster,
            ingest_service_pb2_grpc.IngestServiceStub(channels[0]),
            hotlist_service_pb2_grpc.HotlistServiceStub(channels[1]),
            recognize_service_pb2_grpc.RecognizeServiceStub(channels[2]),
        )
        await environment.hotlist.CreateHotlist(
            hotlist_service_pb2.CreateHotlistRequest(hotlist=hotlist_pb2.Hotlist(name=HOTLIST, active=True)),
            metadata=METADATA,
        )
        yield environment


@dataclass
class FaultContext:
    """What a fault acts on; it records what it did in ``notes``."""

    environment: FaultEnvironment
    subscriber: AlertSubscriber
    notes: dict[str, Any] = field(default_factory=dict)


Fault = Callable[[FaultContext], Awaitable[float | None]]
"""Injects a fault and returns when the faulty part was back (time.time()), or None for no fault."""


async def no_fault(context: FaultContext) -> float | None:
    """Nothing happens."""
    return None


async def recognize_down_5s(context: FaultContext) -> float | None:
    """recognize is killed and comes back 5 s later."""
    recognize = context.environment.cluster.recognize
    await recognize.kill()
    await asyncio.sleep(5.0)
    return await recognize.start()


def _killed(name: str) -> Fault:
    async def fault(context: FaultContext) -> float | None:
        service = getattr(context.environment.cluster, name)
        await service.kill()
        return float(await service.start())

    fault.__doc__ = f"kill -9 {name}, started again at once."
    return fault


def _terminated(name: str) -> Fault:
    async def fault(context: FaultContext) -> float | None:
        service = getattr(context.environment.cluster, name)
        context.notes["stop_seconds"] = round(await service.terminate(), 2)
        return float(await service.start())

    fault.__doc__ = f"SIGTERM {name} (waiting for it to exit), started again at once."
    return fault


async def postgres_stopped_15s(context: FaultContext) -> float | None:
    """The database (of ingest and hotlist) stops for 15 s."""
    postgres = context.environment.postgres
    await postgres.stop_async()
    await asyncio.sleep(15.0)
    await postgres.start_async()
    return time.time()


async def subscriber_killed(context: FaultContext) -> float | None:
    """The alert subscriber dies and comes back 5 s later, resuming after its saved cursor."""
    await context.subscriber.kill()
    await asyncio.sleep(5.0)
    context.subscriber.start()
    return None  # the services were never down


FAULTS: dict[str, Fault] = {
    "no fault": no_fault,
    "recognize down 5 s": recognize_down_5s,
    "kill -9 ingest": _killed("ingest"),
    "SIGTERM ingest": _terminated("ingest"),
    "kill -9 hotlist": _killed("hotlist"),
    "SIGTERM hotlist": _terminated("hotlist"),
    "kill -9 recognize": _killed("recognize"),
    "PostgreSQL stopped 15 s": postgres_stopped_15s,
    "subscriber killed and resumed": subscriber_killed,
}


async def register_cameras(environment: FaultEnvironment, camera_ids: list[str]) -> None:
    """Register fixed cameras."""
    for camera_id in camera_ids:
        await environment.ingest.RegisterCamera(
            ingest_service_pb2.RegisterCameraRequest(camera=fixed_camera(camera_id)), metadata=METADATA
        )


async def hotlist_plates(environment: FaultEnvironment, passes: list[Pass]) -> None:
    """Put the hotlisted passes' plates on the list."""
    entries = [hotlist_pb2.HotlistEntry(plate=p.plate, reason="fault injection") for p in passes if p.hotlisted]
    for start in range(0, len(entries), 1000):
        await environment.hotlist.UpsertEntries(
            hotlist_service_pb2.UpsertEntriesRequest(hotlist_name=HOTLIST, entries=entries[start : start + 1000]),
            metadata=METADATA,
        )


async def mark_readable(environment: FaultEnvironment, passes: list[Pass], min_reads: int = 2) -> None:
    """The baseline: a pass counts when recognize, asked directly, reads its plate in ``min_reads`` of its frames
    (ingest's default ``final_min_reads``: fewer reads make no event even when nothing fails)."""
    limit = asyncio.Semaphore(2)

    async def read(vehicle: Pass) -> None:
        images = [
            recognition_pb2.ImageInput(image_id=f.frame_id, image=image_pb2.EncodedImage(data=f.image))
            for f in vehicle.frames
        ]
        async with limit:
            reply = await environment.recognize.Recognize(
                recognize_service_pb2.RecognizeRequest(images=images), metadata=METADATA, timeout=60
            )
        texts = [plate.reading.text for result in reply.results for plate in result.plates]
        vehicle.readable = texts.count(vehicle.plate) >= min_reads

    await asyncio.gather(*(read(vehicle) for vehicle in passes))


async def settle(environment: FaultEnvironment, fleet: Fleet, camera_ids: list[str], seconds: float = 90.0) -> None:
    """Until the system is quiet for these cameras (see the module docstring); TimeoutError after ``seconds``."""
    async with asyncio.timeout(seconds):
        await wait_until(lambda: fleet.unanswered() == 0, seconds=seconds, interval=0.1)
        previous: tuple[int, float] | None = None
        quiet_since = time.monotonic()
        while True:
            waiting, _ = await asyncio.to_thread(spool_counts, environment.cluster.spool_path, camera_ids)
            state = await _reads_state(environment, camera_ids)
            if state != previous or waiting or state is None:
                previous, quiet_since = state, time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET_SECONDS:
                return
            await asyncio.sleep(0.25)


async def _reads_state(environment: FaultEnvironment, camera_ids: list[str]) -> tuple[int, float] | None:
    try:
        connection = await asyncpg.connect(environment.postgres.url, timeout=5)
    except (OSError, asyncpg.PostgresError):
        return None  # the database is (still) down: not quiet
    try:
        row = await connection.fetchrow(
            "SELECT count(*) AS n, coalesce(extract(epoch FROM max(update_time)), 0) AS t FROM hotlist.reads"
            " WHERE camera_id = ANY($1::text[])",
            camera_ids,
        )
    finally:
        await connection.close()
    assert row is not None
    return int(row["n"]), float(row["t"])


async def alerts_settled(environment: FaultEnvironment, subscriber: AlertSubscriber, camera_ids: list[str]) -> None:
    """Until the subscriber received as many alerts as hotlist raised for these cameras (15 s at most)."""
    connection = await asyncpg.connect(environment.postgres.url)
    try:
        raised = int(
            await connection.fetchval(
                "SELECT count(*) FROM hotlist.alerts WHERE camera_id = ANY($1::text[])", camera_ids
            )
        )
    finally:
        await connection.close()

    async def received() -> bool:
        return len({a.alert_id for a in subscriber.received}) >= raised or subscriber.failure is not None

    with contextlib.suppress(TimeoutError):  # the report shows what is missing
        await wait_until_async(received, seconds=15.0, interval=0.1)


async def run_scenario(
    environment: FaultEnvironment, name: str, shape: LoadShape, *, fault_at: float = 6.0, fault: Fault | None = None
) -> Report:
    """Load the system with ``shape``, inject the fault ``name`` (of :data:`FAULTS`) ``fault_at`` seconds in,
    wait for quiescence and report. The cameras are new for each run, so runs can share one environment."""
    inject = fault or FAULTS[name]
    await environment.cluster.start()  # whatever an earlier run left down
    run = next(_runs)
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    camera_ids = [f"r{run}-{slug}-{n}"[:64] for n in range(shape.cameras)]
    ledger = await asyncio.to_thread(plan, camera_ids, shape)
    await register_cameras(environment, camera_ids)
    await hotlist_plates(environment, ledger.passes)
    await mark_readable(environment, ledger.passes)
    subscriber = AlertSubscriber(environment.hotlist, METADATA, camera_ids)
    subscriber.start()
    fleet = Fleet(ledger, environment.ingest, METADATA)
    context = FaultContext(environment, subscriber)
    began = time.time()
    fleet.start(shape)
    try:
        await asyncio.sleep(fault_at)
        context.notes["injected_after_seconds"] = round(time.time() - began, 2)
        back_at = await inject(context)
        if back_at is not None:
            context.notes["back_after_seconds"] = round(back_at - began, 2)
        await fleet.captured()
        await environment.cluster.start()  # a fault that left a service down must not hang the wait below
        await settle(environment, fleet, camera_ids)
        await alerts_settled(environment, subscriber, camera_ids)
    finally:
        await fleet.stop()
        await subscriber.kill()
    events = await stored_events(environment.postgres.url, camera_ids)
    _, dead = await asyncio.to_thread(spool_counts, environment.cluster.spool_path, camera_ids)
    return build_report(
        name, ledger, shape.frames_per_second, events, subscriber.received, dead, back_at, context.notes
    )
