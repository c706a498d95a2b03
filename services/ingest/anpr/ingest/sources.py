"""Pulled sources: validation, persistence in PostgreSQL, and one :class:`SourceRunner` per source."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence

import asyncpg

from anpr.api.ingest.v1 import source_pb2
from anpr.ingest import metrics
from anpr.ingest.cameras import CAMERA_ID
from anpr.ingest.paging import decode_token, encode_token, page_size
from anpr.ingest.settings import IngestSettings
from anpr.ingest.source_runner import SourceRunner, Submit
from anpr.runtime.database import Pool
from anpr.runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound

_SCHEMES = {
    source_pb2.SOURCE_KIND_RTSP: ("rtsp://", "rtsps://"),
    source_pb2.SOURCE_KIND_MJPEG: ("http://", "https://"),
}


def validate(source: source_pb2.Source) -> None:
    """INVALID_ARGUMENT for a source that cannot be pulled as given."""
    if source.source_id and not CAMERA_ID.match(source.source_id):
        raise InvalidArgument("source.source_id must be 1-64 characters from A-Z a-z 0-9 . _ -")
    if not CAMERA_ID.match(source.camera_id):
        raise InvalidArgument("source.camera_id must name a registered camera")
    if source.kind == source_pb2.SOURCE_KIND_UNSPECIFIED or source.kind not in source_pb2.SourceKind.values():
        raise InvalidArgument("source.kind is required: RTSP, MJPEG or FILE")
    if not source.uri or len(source.uri) > 2048:
        raise InvalidArgument("source.uri is required (at most 2048 characters)")
    schemes = _SCHEMES.get(source.kind)
    if schemes is not None and not source.uri.lower().startswith(schemes):
        raise InvalidArgument(f"source.uri of this kind must start with {' or '.join(schemes)}")
    if source.kind == source_pb2.SOURCE_KIND_FILE and "://" in source.uri and not source.uri.startswith("file://"):
        raise InvalidArgument("a FILE source needs a path or a file:// URI")
    if not 0 <= source.target_fps <= 120:
        raise InvalidArgument("source.target_fps must be in [0, 120]")


class SourceManager:
    """Adds, removes, lists and runs pulled sources."""

    def __init__(self, pool: Pool, settings: IngestSettings, submit: Submit) -> None:
        self._pool = pool
        self._settings = settings
        self._submit = submit
        self._runners: dict[str, SourceRunner] = {}

    def _runner(self, source: source_pb2.Source) -> SourceRunner:
        return SourceRunner(
            source,
            self._submit,
            default_fps=self._settings.source_default_fps,
            backoff_initial=self._settings.source_backoff_initial_seconds,
            backoff_max=self._settings.source_backoff_max_seconds,
            on_state_change=self._refresh_gauge,
        )

    def _refresh_gauge(self) -> None:
        counts = Counter(runner.source.state for runner in self._runners.values())
        for name, value in source_pb2.SourceState.items():
            if value != source_pb2.SOURCE_STATE_UNSPECIFIED:
                metrics.SOURCES_BY_STATE.labels(name.removeprefix("SOURCE_STATE_").lower()).set(counts.get(value, 0))

    async def start_all(self) -> None:
        """Start every stored source (at service start)."""
        rows = await self._pool.fetch("SELECT * FROM ingest.sources ORDER BY source_id")
        for row in rows:
            source = source_pb2.Source(
                source_id=row["source_id"],
                camera_id=row["camera_id"],
                kind=row["kind"],
                uri=row["uri"],
                target_fps=row["target_fps"],
                loop=row["loop"],
            )
            source.create_time.FromDatetime(row["create_time"])
            self._start(source)

    def _start(self, source: source_pb2.Source) -> SourceRunner:
        runner = self._runner(source)
        self._runners[source.source_id] = runner
        runner.start()
        self._refresh_gauge()
        return runner

    async def stop_all(self) -> None:
        """Stop every runner (at shutdown); the sources stay stored."""
        runners = list(self._runners.values())
        await asyncio.gather(*(runner.stop() for runner in runners))

    async def add(self, source: source_pb2.Source) -> source_pb2.Source:
        """Store and start a source."""
        validate(source)
        stored = source_pb2.Source(
            source_id=source.source_id or uuid.uuid4().hex[:16],
            camera_id=source.camera_id,
            kind=source.kind,
            uri=source.uri,
            target_fps=source.target_fps,
            loop=source.loop,
        )
        try:
            row = await self._pool.fetchrow(
                """INSERT INTO ingest.sources (source_id, camera_id, kind, uri, target_fps, loop)
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (source_id) DO NOTHING RETURNING create_time""",
                stored.source_id,
                stored.camera_id,
                stored.kind,
                stored.uri,
                stored.target_fps,
                stored.loop,
            )
        except asyncpg.ForeignKeyViolationError:
            raise FailedPrecondition(f"camera {source.camera_id} is not registered") from None
        if row is None:
            raise AlreadyExists(f"source {stored.source_id} already exists")
        stored.create_time.FromDatetime(row["create_time"])
        return self._start(stored).snapshot()

    async def remove(self, source_id: str) -> source_pb2.Source:
        """Stop and forget a source; its final state."""
        status = await self._pool.execute("DELETE FROM ingest.sources WHERE source_id = $1", source_id)
        runner = self._runners.pop(source_id, None)
        if runner is None and status.endswith(" 0"):
            raise NotFound(f"source {source_id} does not exist")
        if runner is None:
            return source_pb2.Source(source_id=source_id)
        await runner.stop()
        self._refresh_gauge()
        return runner.snapshot()

    async def remove_for_camera(self, camera_id: str) -> int:
        """Stop the camera's sources (their rows go with the camera); how many."""
        ids = [sid for sid, runner in self._runners.items() if runner.source.camera_id == camera_id]
        for source_id in ids:
            await self._runners.pop(source_id).stop()
        self._refresh_gauge()
        return len(ids)

    def list(
        self, requested_size: int, token: str, camera_id: str, states: Sequence[int]
    ) -> tuple[list[source_pb2.Source], str]:
        """A page of sources ordered by id."""
        filters = [camera_id, sorted(states)]
        after = decode_token(token, filters)
        size = page_size(requested_size)
        matching = [
            runner.snapshot()
            for source_id, runner in sorted(self._runners.items())
            if (after is None or source_id > after)
            and (not camera_id or runner.source.camera_id == camera_id)
            and (not states or runner.source.state in states)
        ]
        page = matching[:size]
        return page, encode_token(page[-1].source_id, filters) if len(matching) > size else ""
