"""A source manager in a process of its own, for tests that kill it with SIGKILL like a crashed ingest replica.

``python -m testkit.source_replica DATABASE_URL REPLICA_ID LEASE_SECONDS TOKENS_FILE``: claims the sources no live
replica holds (on a migrated database) and pulls them, acknowledging every frame as accepted, until killed.
"""

from __future__ import annotations

import asyncio
import sys

from anpr.api.ingest.v1 import frame_pb2
from anpr.ingest.settings import IngestSettings
from anpr.ingest.sources import SourceManager
from anpr.runtime.database import open_pool
from anpr.runtime.settings import load_settings


async def accept(frame: frame_pb2.Frame) -> frame_pb2.FrameAck:
    """Every frame accepted (this process stands in for a whole ingest replica; only its pulling matters)."""
    return frame_pb2.FrameAck(
        camera_id=frame.camera_id, frame_id=frame.frame_id, status=frame_pb2.FRAME_STATUS_ACCEPTED
    )


async def run(database_url: str, replica_id: str, lease_seconds: str, tokens_file: str) -> None:
    """Pull the sources this replica can claim until the process is killed."""
    settings = load_settings(
        IngestSettings,
        environ={},
        grpc_port="0",
        metrics_port="0",
        auth_tokens_file=tokens_file,
        database_url=database_url,
        replica_id=replica_id,
        source_lease_seconds=lease_seconds,
    )
    async with open_pool(settings) as pool:
        manager = SourceManager(pool, settings, accept)
        await manager.start()
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(run(*sys.argv[1:5]))
