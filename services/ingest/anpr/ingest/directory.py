"""Cameras as the frame path sees them: a short-lived cache over the registry, plus liveness per camera.

Every frame needs its camera (limits, disabled flag, location); reading PostgreSQL per frame would cap throughput,
so lookups are cached for a few seconds. Changes made through this process invalidate the cache at once; changes
made through another replica show within the cache lifetime.
"""

from __future__ import annotations

import time

from anpr.api.ingest.v1 import camera_pb2
from anpr.ingest.cameras import CameraRepository
from anpr.ingest.store_catch_up import DATABASE_ERRORS


class CameraDirectory:
    """Cached camera lookups and last-frame bookkeeping."""

    def __init__(self, repository: CameraRepository, cache_seconds: float = 5.0, online_window: float = 30.0) -> None:
        self._repository = repository
        self._cache_seconds = cache_seconds
        self._online_window = online_window
        self._cache: dict[str, tuple[float, camera_pb2.Camera | None]] = {}
        self._last_frame: dict[str, tuple[float, float]] = {}  # camera -> (capture time, monotonic arrival)
        self._arrivals: dict[str, float] = {}  # camera -> monotonic arrival, not yet published (see liveness)

    async def get(self, camera_id: str) -> camera_pb2.Camera | None:
        """The camera, or None when it is not registered."""
        now = time.monotonic()
        cached = self._cache.get(camera_id)
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        try:
            camera = await self._repository.find(camera_id)
        except DATABASE_ERRORS:
            if cached is None:
                raise
            # PostgreSQL is unreachable: a camera known before keeps working on what was known, so frames and
            # plate events do not stop with the database (its event table catches up, see store_catch_up).
            return cached[1]
        if len(self._cache) > 100_000:  # unknown ids from a hostile caller must not grow the cache forever
            self._cache.clear()
        self._cache[camera_id] = (now, camera)
        return camera

    def invalidate(self, camera_id: str) -> None:
        """Forget a cached camera (after a change through this process)."""
        self._cache.pop(camera_id, None)
        self._last_frame.pop(camera_id, None)

    def frame_arrived(self, camera_id: str, capture_time: float) -> None:
        """Record an accepted frame."""
        arrival = time.monotonic()
        self._last_frame[camera_id] = (capture_time, arrival)
        self._arrivals[camera_id] = arrival

    def take_arrivals(self) -> dict[str, float]:
        """The cameras heard from since the last call, with their latest monotonic arrival times."""
        arrivals, self._arrivals = self._arrivals, {}
        return arrivals

    def restore_arrivals(self, arrivals: dict[str, float]) -> None:
        """Put back arrivals that could not be published (newer ones recorded meanwhile win)."""
        for camera_id, arrival in arrivals.items():
            self._arrivals[camera_id] = max(arrival, self._arrivals.get(camera_id, arrival))

    def last_frame(self, camera_id: str) -> tuple[float, float] | None:
        """(capture time, monotonic arrival) of the camera's last accepted frame."""
        return self._last_frame.get(camera_id)

    def is_online(self, camera_id: str) -> bool | None:
        """Whether the camera delivered a frame within the online window; None before its first frame."""
        last = self._last_frame.get(camera_id)
        if last is None:
            return None
        return time.monotonic() - last[1] <= self._online_window

    def decorate(self, camera: camera_pb2.Camera) -> camera_pb2.Camera:
        """Fill the output-only liveness fields of a camera."""
        last = self._last_frame.get(camera.camera_id)
        if last is None:
            camera.connectivity = camera_pb2.CAMERA_CONNECTIVITY_UNSPECIFIED
            return camera
        camera.last_frame_time.FromNanoseconds(round(last[0] * 1e9))
        online = self.is_online(camera.camera_id)
        camera.connectivity = (
            camera_pb2.CAMERA_CONNECTIVITY_ONLINE if online else camera_pb2.CAMERA_CONNECTIVITY_OFFLINE
        )
        return camera
