"""Fleet-wide gauges with several ingest replicas: the camera counts come from PostgreSQL, not one replica's memory.

Two replicas are played by two camera directories (with their liveness publishers) on the database of a running
ingest service: a camera heard by the first one must count as online in the numbers the second exports.
"""

from __future__ import annotations

import asyncpg
import grpc.aio
from prometheus_client import REGISTRY

from anpr.api.ingest.v1 import camera_pb2, ingest_service_pb2_grpc
from anpr.ingest.cameras import CameraRepository
from anpr.ingest.directory import CameraDirectory
from anpr.ingest.liveness import CameraLiveness
from testkit.ingest_env import IngestEnvironment, fixed_camera, register


def cameras(kind: str, state: str) -> float | None:
    return REGISTRY.get_sample_value("anpr_ingest_cameras", {"camera_kind": kind, "state": state})


async def test_a_camera_heard_by_one_replica_counts_on_every_replica(env: IngestEnvironment) -> None:
    server = await env.start_ingest(dependencies=False)
    async with grpc.aio.insecure_channel(server.address) as channel:
        ingest = ingest_service_pb2_grpc.IngestServiceStub(channel)
        await register(ingest, env, fixed_camera("fleet-cam-1"))
        await register(ingest, env, fixed_camera("fleet-cam-2"))
        moving = camera_pb2.Camera(camera_id="fleet-body-1", kind=camera_pb2.CAMERA_KIND_BODY)
        await register(ingest, env, moving)
    pool = await asyncpg.create_pool(env.database_url, min_size=1, max_size=2)
    try:
        first, second = CameraDirectory(CameraRepository(pool)), CameraDirectory(CameraRepository(pool))
        first.frame_arrived("fleet-cam-1", 0.0)
        await CameraLiveness(pool, first, online_window=30.0).publish_once()
        await CameraLiveness(pool, second, online_window=30.0).publish_once()
        # Read right after the publish, before the service's own publisher can run (it would read the same rows).
        assert (cameras("fixed", "online"), cameras("fixed", "silent")) == (1, 1)
        assert (cameras("body", "silent"), cameras("mobile", "online")) == (1, 0)

        # The second replica with a window already past: the camera heard before is offline, not forgotten.
        await CameraLiveness(pool, second, online_window=0.0).publish_once()
        assert (cameras("fixed", "online"), cameras("fixed", "offline")) == (0, 1)
    finally:
        await pool.close()
