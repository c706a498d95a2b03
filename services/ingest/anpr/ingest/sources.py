"""Pulled sources: validation, and one :class:`SourceRunner` per source this replica holds the lease of.

Every ingest replica runs a :class:`SourceManager` on the shared ``ingest.sources`` table (see
:mod:`anpr.ingest.source_table`). Each source is pulled by exactly one replica: the one holding its lease. A replica
renews its leases every third of ``source_lease_seconds`` and takes over lapsed ones in the same statement, so when
a replica dies another takes its sources over within about one lease period. A replica that cannot renew in time
(say the database is unreachable) stops pulling before its leases can lapse, so two replicas never pull one stream.
RemoveSource deletes the row on whichever replica receives it; the owner sees the row gone at its next renewal.
Finished and failed sources keep their final state in the table and are never claimed again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Sequence

import asyncpg

from anpr.api.ingest.v1 import source_pb2
from anpr.ingest import metrics
from anpr.ingest.cameras import CAMERA_ID
from anpr.ingest.paging import decode_token, encode_token, page_size
from anpr.ingest.settings import IngestSettings
from anpr.ingest.source_runner import SourceRunner, Submit
from anpr.ingest.source_table import FINAL_STATES, SourceTable, StoredSource
from anpr.runtime.database import Pool
from anpr.runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound

log = logging.getLogger(__name__)

# What an unreachable or restarting database raises (a dropped connection is an InterfaceError in asyncpg).
_DATABASE_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)

_SCHEMES = {
    source_pb2.SOURCE_KIND_RTSP: ("rtsp://", "rtsps://"),
    source_pb2.SOURCE_KIND_MJPEG: ("http://", "https://"),
}


def validate(source: source_pb2.Source) -> None:
    """INVALID_ARGUMENT for a source that cannot be pulled as given."""
    if source.source_id and not CAMERA_ID.fullmatch(source.source_id):
        raise InvalidArgument(
            "source.source_id must be 1-64 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit"
        )
    if not CAMERA_ID.fullmatch(source.camera_id):
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
    """Adds, removes and lists pulled sources, and runs the ones whose lease this replica holds."""

    def __init__(self, pool: Pool, settings: IngestSettings, submit: Submit) -> None:
        self._settings = settings
        self._submit = submit
        self._lease_seconds = settings.source_lease_seconds
        self._renew_seconds = settings.source_lease_seconds / 3
        self._table = SourceTable(pool, settings.replica_id, settings.source_lease_seconds)
        self._runners: dict[str, SourceRunner] = {}
        # Held across each change of the table and of the runners that must agree with it (renewal, add, remove),
        # so a renewal that read the table before an AddSource cannot stop the source that AddSource just started.
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._renewer: asyncio.Task[None] | None = None
        self._deadline = float("-inf")  # event-loop time at which this replica's leases may have lapsed
        self._expiry: asyncio.TimerHandle | None = None
        self._stopping: set[asyncio.Task[None]] = set()
        self._stopped = False

    async def start(self) -> None:
        """Claim the sources no live replica holds, start them, and keep the leases renewed (at service start)."""
        await self._renew()
        self._renewer = asyncio.create_task(self._keep_leases(), name="source-leases")

    async def stop(self) -> None:
        """Stop pulling and release this replica's leases, so another replica takes its sources over at once
        instead of after the lease period (at shutdown); the sources stay stored. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
        if self._expiry is not None:
            self._expiry.cancel()
        async with self._lock:
            runners, self._runners = list(self._runners.values()), {}
            await asyncio.gather(*(runner.stop() for runner in runners), *self._stopping)
            try:
                # Bounded: shutdown has a grace period, and leases that are not released still lapse by themselves.
                async with asyncio.timeout(self._renew_seconds):
                    await self._table.release_all(runner.snapshot() for runner in runners)
            except _DATABASE_ERRORS as exc:
                log.warning(
                    "could not release the source leases; they lapse within %.0f s: %r", self._lease_seconds, exc
                )

    async def _keep_leases(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self._renew_seconds):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                async with asyncio.timeout(self._renew_seconds):
                    await self._renew()
            except _DATABASE_ERRORS as exc:
                # Keep pulling until the deadline: a short database outage must not interrupt every stream.
                log.warning("could not renew the source leases; retrying: %r", exc)

    async def _renew(self) -> None:
        loop = asyncio.get_running_loop()
        async with self._lock:
            # Taken before the statement: the database computes the expiry from a later clock reading, so this
            # replica's deadline falls before the lease lapses in the database.
            sent = loop.time()
            ended = [source_id for source_id, runner in self._runners.items() if runner.done]
            leased = await self._table.renew((runner.snapshot() for runner in self._runners.values()), ended)
            self._extend(sent + self._lease_seconds)
            for source_id in ended:
                self._runners.pop(source_id, None)
            leased_ids = {stored.source.source_id for stored in leased}
            for source_id in [source_id for source_id in self._runners if source_id not in leased_ids]:
                log.info("source %s was removed or is run by another replica now; stopping it here", source_id)
                await self._runners.pop(source_id).stop()
            for stored in leased:
                if stored.source.source_id not in self._runners:
                    log.info("running source %s (lease taken)", stored.source.source_id)
                    self._start(stored)
        await self._refresh_gauge()

    def _extend(self, deadline: float) -> None:
        """Stop every runner at ``deadline`` unless a later renewal extends it."""
        self._deadline = deadline
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry = asyncio.get_running_loop().call_at(deadline, self._leases_lapsed)

    def _leases_lapsed(self) -> None:
        if not self._runners:
            return
        log.warning(
            "could not renew the source leases for %.0f s; stopping %d sources here until a replica claims them",
            self._lease_seconds,
            len(self._runners),
        )
        runners, self._runners = list(self._runners.values()), {}
        for runner in runners:
            task = asyncio.create_task(runner.stop())
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    def _start(self, stored: StoredSource) -> SourceRunner:
        source = source_pb2.Source()
        source.CopyFrom(stored.source)
        source.uri = stored.uri
        runner = SourceRunner(
            source,
            self._submit,
            default_fps=self._settings.source_default_fps,
            backoff_initial=self._settings.source_backoff_initial_seconds,
            backoff_max=self._settings.source_backoff_max_seconds,
            on_state_change=functools.partial(self._state_changed, source.source_id),
        )
        self._runners[source.source_id] = runner
        runner.start()
        return runner

    def _state_changed(self, source_id: str) -> None:
        runner = self._runners.get(source_id)
        if runner is not None and runner.source.state in FINAL_STATES:
            # Store a final state now, not at the next renewal: a replica that dies meanwhile must not leave a
            # finished file to be played again by the next owner.
            self._wake.set()

    async def _refresh_gauge(self) -> None:
        # From the shared table, so every replica reports the same counts (aggregate replicas with max, not sum).
        counts = await self._table.count_by_state()
        for name, value in source_pb2.SourceState.items():
            if value != source_pb2.SOURCE_STATE_UNSPECIFIED:
                metrics.SOURCES_BY_STATE.labels(name.removeprefix("SOURCE_STATE_").lower()).set(counts.get(value, 0))

    async def add(self, source: source_pb2.Source) -> source_pb2.Source:
        """Store a source leased to this replica and start it."""
        validate(source)
        stored = source_pb2.Source(
            source_id=source.source_id or uuid.uuid4().hex[:16],
            camera_id=source.camera_id,
            kind=source.kind,
            uri=source.uri,
            target_fps=source.target_fps,
            loop=source.loop,
            state=source_pb2.SOURCE_STATE_CONNECTING,
        )
        async with self._lock:
            sent = asyncio.get_running_loop().time()
            try:
                create_time = await self._table.insert(stored)
            except asyncpg.ForeignKeyViolationError:
                raise FailedPrecondition(f"camera {source.camera_id} is not registered") from None
            if create_time is None:
                raise AlreadyExists(f"source {stored.source_id} already exists")
            if self._deadline < sent:  # this replica's other leases lapsed: the new one is all it holds
                self._extend(sent + self._lease_seconds)
            stored.create_time.FromDatetime(create_time)
            stored.state_change_time.FromDatetime(create_time)
            runner = self._start(StoredSource(stored, stored.uri))
        return runner.snapshot()

    async def remove(self, source_id: str) -> source_pb2.Source:
        """Delete a source and stop it here if it runs here (its owner elsewhere stops at its next renewal); the
        source's last known state."""
        async with self._lock:
            stored = await self._table.delete(source_id)
            runner = self._runners.pop(source_id, None)
            if runner is not None:
                await runner.stop()
        if stored is None:
            raise NotFound(f"source {source_id} does not exist")
        return runner.snapshot() if runner is not None else stored.redacted()

    async def remove_for_camera(self, camera_id: str) -> int:
        """Delete the camera's sources and stop those running here; how many there were."""
        async with self._lock:
            removed = await self._table.delete_for_camera(camera_id)
            for source_id in [sid for sid, runner in self._runners.items() if runner.source.camera_id == camera_id]:
                await self._runners.pop(source_id).stop()
        return len(removed)

    async def list(
        self, requested_size: int, token: str, camera_id: str, states: Sequence[int]
    ) -> tuple[list[source_pb2.Source], str]:
        """A page of sources ordered by id, from the table (the owners' state as of their last renewal), with the
        live state of the sources this replica runs."""
        filters = [camera_id, sorted(states)]
        after = decode_token(token, filters)
        size = page_size(requested_size)
        rows = await self._table.page(after, size + 1, camera_id, states)
        page = [self._shown(stored) for stored in rows[:size]]
        return page, encode_token(page[-1].source_id, filters) if len(rows) > size else ""

    def _shown(self, stored: StoredSource) -> source_pb2.Source:
        runner = self._runners.get(stored.source.source_id)
        return runner.snapshot() if runner is not None else stored.redacted()
