"""One owner per pulled source: ingest replicas sharing one PostgreSQL never pull a stream twice.

Each replica is a real :class:`SourceManager` with its own connection pool on the test's database, pulling real
streams (an MJPEG server on loopback, video files); frames go to a sink that records which replica submitted them.
Leases last ``LEASE`` seconds here (renewed every third of it) so that take-overs happen within a test.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import asyncpg
import pytest

from anpr.api.ingest.v1 import frame_pb2, source_pb2
from anpr.ingest.cameras import CameraRepository
from anpr.ingest.settings import IngestSettings
from anpr.ingest.sources import SourceManager
from anpr.runtime.database import Pool, open_pool
from anpr.runtime.migrations import migrate
from anpr.runtime.settings import load_settings
from testkit.frames import jpeg, render_plates
from testkit.ingest_env import fixed_camera
from testkit.mjpeg import mjpeg_server
from testkit.polling import wait_until, wait_until_async
from testkit.videos import write_video

LEASE = 1.5
RENEW = LEASE / 3
MJPEG_FPS = 20


@dataclass
class Replica:
    """One ingest replica's source manager and the frames it submitted (by frame id)."""

    name: str
    manager: SourceManager
    pool: Pool
    frames: list[str] = field(default_factory=list)

    def pulled(self, source_id: str) -> int:
        """Frames of one source this replica submitted."""
        return sum(1 for frame_id in self.frames if frame_id.startswith(f"{source_id}-"))

    async def state(self, source_id: str) -> source_pb2.Source:
        """The source as this replica lists it."""
        listed, _ = await self.manager.list(0, "", "", [])
        [source] = [s for s in listed if s.source_id == source_id]
        return source


StartReplica = Callable[[str], Awaitable[Replica]]


@pytest.fixture
async def start_replica(database_url: str, tokens_file: Path) -> AsyncIterator[StartReplica]:
    """Start replicas (each with its own pool) on one database with camera ``cam-1``; stopped gracefully after."""
    async with AsyncExitStack() as stack:

        async def start(name: str) -> Replica:
            settings = load_settings(
                IngestSettings,
                environ={},
                grpc_port="0",
                metrics_port="0",
                auth_tokens_file=str(tokens_file),
                database_url=database_url,
                replica_id=name,
                source_lease_seconds=str(LEASE),
                source_backoff_initial_seconds="0.1",
                source_backoff_max_seconds="0.2",
            )
            pool = await stack.enter_async_context(open_pool(settings))
            await migrate(pool, "ingest", files("anpr.ingest") / "migrations")
            camera = fixed_camera("cam-1")
            camera.limits.max_frames_per_second = 100
            await CameraRepository(pool).register(camera)  # idempotent: every replica sees the same camera
            replica: Replica

            async def submit(frame: frame_pb2.Frame) -> frame_pb2.FrameAck:
                replica.frames.append(frame.frame_id)
                return frame_pb2.FrameAck(
                    camera_id=frame.camera_id, frame_id=frame.frame_id, status=frame_pb2.FRAME_STATUS_ACCEPTED
                )

            replica = Replica(name, SourceManager(pool, settings, submit), pool)
            await replica.manager.start()
            stack.push_async_callback(replica.manager.stop)
            return replica

        yield start


def stream(source_id: str, url: str) -> source_pb2.Source:
    return source_pb2.Source(
        source_id=source_id, camera_id="cam-1", kind=source_pb2.SOURCE_KIND_MJPEG, uri=url, target_fps=10
    )


@pytest.fixture
async def camera_url() -> AsyncIterator[str]:
    """An MJPEG camera that streams for as long as a test runs."""
    async with mjpeg_server(jpeg(160, 120), frames=100_000, fps=MJPEG_FPS) as (url, _):
        yield url


async def pulling(replica: Replica, source_id: str, seconds: float = 0.6) -> bool:
    """Whether the replica submits frames of the source during the next ``seconds``."""
    before = replica.pulled(source_id)
    await asyncio.sleep(seconds)
    return replica.pulled(source_id) > before


async def test_two_replicas_starting_together_share_out_each_stream_once(
    start_replica: StartReplica, camera_url: str
) -> None:
    first = await start_replica("first")
    for source_id in ("a", "b", "c"):
        await first.manager.add(stream(source_id, camera_url))
    await first.manager.stop()  # leases released: the next two replicas race for every source
    second, third = await asyncio.gather(start_replica("second"), start_replica("third"))

    await wait_until(lambda: all(second.pulled(s) + third.pulled(s) > 0 for s in "abc"), seconds=10)
    await asyncio.sleep(3 * RENEW)  # several renewals: nobody takes over a source whose owner renews
    for source_id in "abc":
        assert (second.pulled(source_id) > 0) != (third.pulled(source_id) > 0), source_id
        assert (await second.state(source_id)).state == source_pb2.SOURCE_STATE_RUNNING


async def test_a_replica_cut_off_from_the_database_stops_and_another_takes_over_within_the_lease(
    start_replica: StartReplica, camera_url: str
) -> None:
    owner = await start_replica("owner")
    standby = await start_replica("standby")
    await owner.manager.add(stream("gate", camera_url))
    await wait_until(lambda: owner.pulled("gate") > 0)
    assert not await pulling(standby, "gate")

    loop = asyncio.get_running_loop()
    cut = loop.time()
    owner.pool.terminate()  # the owner can no longer renew (a dead replica looks the same to the database)
    await wait_until(lambda: standby.pulled("gate") > 0, seconds=3 * LEASE)
    took_over = loop.time() - cut
    assert took_over < LEASE + 2 * RENEW
    assert not await pulling(owner, "gate")  # the cut-off replica stopped pulling: its lease had run out
    assert (await standby.state("gate")).state == source_pb2.SOURCE_STATE_RUNNING


async def test_a_killed_owners_streams_are_taken_over_within_the_lease(
    start_replica: StartReplica, database_url: str, tokens_file: Path
) -> None:
    async with mjpeg_server(jpeg(160, 120), frames=100_000, fps=MJPEG_FPS) as (url, connections):
        adder = await start_replica("adder")
        await adder.manager.add(stream("gate", url))
        await adder.manager.stop()  # released: the replica in its own process claims it
        connected_before = len(connections)
        crashing = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "testkit.source_replica",
            database_url,
            "crashing",
            str(LEASE),
            str(tokens_file),
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        try:
            connection = await asyncpg.connect(database_url)
            try:

                async def owned() -> bool:
                    owner = await connection.fetchval("SELECT owner FROM ingest.sources WHERE source_id = 'gate'")
                    return bool(owner == "crashing")

                await wait_until_async(owned, seconds=20)
            finally:
                await connection.close()
            await wait_until(lambda: len(connections) > connected_before, seconds=10)
            standby = await start_replica("standby")
            assert not await pulling(standby, "gate")

            loop = asyncio.get_running_loop()
            crashing.kill()  # SIGKILL: nothing is released
            killed = loop.time()
            await crashing.wait()
            await wait_until(lambda: standby.pulled("gate") > 0, seconds=3 * LEASE)
            assert loop.time() - killed < LEASE + 2 * RENEW
        finally:
            if crashing.returncode is None:
                crashing.kill()
                await crashing.wait()


async def test_a_graceful_stop_hands_the_streams_over_without_waiting_for_the_lease(
    start_replica: StartReplica, camera_url: str
) -> None:
    owner = await start_replica("owner")
    standby = await start_replica("standby")
    await owner.manager.add(stream("gate", camera_url))
    await wait_until(lambda: owner.pulled("gate") > 0)
    sampled = (await owner.state("gate")).frames_sampled

    loop = asyncio.get_running_loop()
    stopped = loop.time()
    await owner.manager.stop()
    await wait_until(lambda: standby.pulled("gate") > 0, seconds=LEASE)
    assert loop.time() - stopped < RENEW + 0.5
    assert (await standby.state("gate")).frames_sampled >= sampled  # the count goes on where the owner left it


async def test_a_finished_file_is_not_played_again_by_the_next_replica(
    start_replica: StartReplica, tmp_path: Path
) -> None:
    video = write_video(
        tmp_path / "short.avi", (render_plates([("CA123456", 40, 120)], 320, 180) for _ in range(10)), fps=20
    )
    first = await start_replica("first")
    await first.manager.add(
        source_pb2.Source(source_id="clip", camera_id="cam-1", kind=source_pb2.SOURCE_KIND_FILE, uri=str(video))
    )

    async def finished() -> bool:
        return (await first.state("clip")).state == source_pb2.SOURCE_STATE_FINISHED

    await wait_until_async(finished)
    played = first.pulled("clip")
    assert played > 0
    await first.manager.stop()

    restarted = await start_replica("restarted")
    assert not await pulling(restarted, "clip", seconds=3 * RENEW)
    listed = await restarted.state("clip")
    assert listed.state == source_pb2.SOURCE_STATE_FINISHED
    assert listed.frames_sampled == played


async def test_removing_a_source_on_another_replica_stops_its_owner(
    start_replica: StartReplica, camera_url: str
) -> None:
    owner = await start_replica("owner")
    other = await start_replica("other")
    await owner.manager.add(stream("gate", camera_url))
    await wait_until(lambda: owner.pulled("gate") > 0)
    await asyncio.sleep(RENEW + 0.1)  # one renewal stores the owner's state for the other replicas

    seen_elsewhere = await other.state("gate")
    assert seen_elsewhere.state == source_pb2.SOURCE_STATE_RUNNING
    assert seen_elsewhere.frames_sampled > 0
    removed = await other.manager.remove("gate")
    assert removed.source_id == "gate"
    assert removed.frames_sampled > 0

    await asyncio.sleep(RENEW + 0.3)  # the owner notices at its next renewal
    assert not await pulling(owner, "gate")
    assert not await pulling(other, "gate", seconds=0)
    assert (await owner.manager.list(0, "", "", []))[0] == []
