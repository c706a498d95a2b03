"""Camera liveness for the whole fleet: every replica records its arrivals in PostgreSQL and counts from there.

A camera streams to whichever replica its connection landed on, and moves when that replica restarts. A gauge
counted from one replica's memory is therefore wrong as soon as there are two: the camera is online on one and
"offline" on the other, and summing over replicas double counts. So each replica writes, every few seconds and
in one statement, when it last heard from each camera (``ingest.camera_last_frames``, database clock), and every
replica exports the same counts read back from the table. Dashboards and alerts take ``max`` over replicas.

Exporting from every replica rather than from one lock holder keeps the series alive through a failover; the cost
is one small upsert and one ``GROUP BY`` per replica per interval.
"""

from __future__ import annotations

import asyncio
import logging
import time

from anpr.api.ingest.v1 import camera_pb2
from anpr.ingest import metrics
from anpr.ingest.directory import CameraDirectory
from anpr.ingest.store_catch_up import DATABASE_ERRORS
from anpr.runtime.database import Pool

log = logging.getLogger(__name__)

KINDS = tuple(
    name.removeprefix("CAMERA_KIND_").lower()
    for name in camera_pb2.CameraKind.keys()  # noqa: SIM118 (an EnumTypeWrapper is not iterable)
    if name != "CAMERA_KIND_UNSPECIFIED"
)
STATES = ("online", "offline", "silent")

_RECORD = """
INSERT INTO ingest.camera_last_frames AS l (camera_id, last_frame_time)
SELECT v.camera_id, now() - make_interval(secs => v.age)
  FROM unnest($1::text[], $2::float8[]) AS v (camera_id, age)
  JOIN ingest.cameras c USING (camera_id)
    ON CONFLICT (camera_id) DO UPDATE SET last_frame_time = greatest(l.last_frame_time, EXCLUDED.last_frame_time)
"""
_COUNT = """
SELECT c.kind,
       count(*) FILTER (WHERE l.last_frame_time >= now() - make_interval(secs => $1)) AS online,
       count(*) FILTER (WHERE l.last_frame_time < now() - make_interval(secs => $1)) AS offline,
       count(*) FILTER (WHERE l.last_frame_time IS NULL) AS silent
  FROM ingest.cameras c LEFT JOIN ingest.camera_last_frames l USING (camera_id)
 WHERE NOT c.disabled
 GROUP BY c.kind
"""


class CameraLiveness:
    """Publishes this replica's arrivals and refreshes the fleet-wide ``anpr_ingest_cameras`` gauge."""

    def __init__(self, pool: Pool, directory: CameraDirectory, online_window: float) -> None:
        self._pool = pool
        self._directory = directory
        self._online_window = online_window

    async def publish_once(self) -> None:
        """Record the arrivals since the last call, then count enabled cameras by kind and state."""
        arrivals = self._directory.take_arrivals()
        now = time.monotonic()
        ids = list(arrivals)
        try:
            async with self._pool.acquire() as connection:
                if ids:
                    await connection.execute(_RECORD, ids, [max(0.0, now - arrivals[i]) for i in ids])
                rows = await connection.fetch(_COUNT, self._online_window)
        except BaseException:
            self._directory.restore_arrivals(arrivals)  # written with the next round instead
            raise
        counts = {row["kind"]: row for row in rows}
        for kind in KINDS:
            row = counts.get(kind)
            for state in STATES:
                metrics.CAMERAS_BY_STATE.labels(kind, state).set(0 if row is None else row[state])

    async def run(self, interval_seconds: float) -> None:
        """Publish every interval until cancelled; a database outage only delays the numbers."""
        while True:
            try:
                await self.publish_once()
            except DATABASE_ERRORS as exc:
                log.warning("could not publish camera liveness; retrying: %s", exc)
            await asyncio.sleep(interval_seconds)
