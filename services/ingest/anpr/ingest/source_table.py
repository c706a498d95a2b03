"""The ``ingest.sources`` table: what to pull, which replica holds each source's lease, and the owner's view of it.

A lease is two columns of the source's row, ``owner`` (a replica id) and ``lease_expires`` (database clock). One
``UPDATE ... WHERE owner = me OR lease_expires < now() ... RETURNING`` both renews a replica's leases and takes over
lapsed ones: row locks make concurrent claims of one row serialise, and the loser re-reads the winner's fresh expiry
and skips the row. Nothing is held between statements, so a replica that dies (or loses the database) simply stops
renewing and its leases time out; no advisory lock tied to a pooled connection can outlive it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from anpr.api.ingest.v1 import source_pb2
from anpr.ingest.source_runner import redact
from anpr.runtime.database import Connection, Pool

FINAL_STATES = (source_pb2.SOURCE_STATE_FINISHED, source_pb2.SOURCE_STATE_FAILED)
"""States in which a source is never claimed again: a finished file is not played twice."""

_COLUMNS = """source_id, camera_id, kind, uri, target_fps, loop, create_time, state, state_message,
              state_change_time, last_frame_time, frames_sampled, reconnect_attempts"""
# What other replicas see of a source whose owner stopped renewing and that no replica has taken over yet.
_LISTED = f"""source_id, camera_id, kind, uri, target_fps, loop, create_time,
              CASE WHEN state <> ALL($1::smallint[]) AND lease_expires < now() THEN
                   {source_pb2.SOURCE_STATE_CONNECTING} ELSE state END AS state,
              CASE WHEN state <> ALL($1::smallint[]) AND lease_expires < now() THEN
                   'waiting for an ingest replica to take it over' ELSE state_message END AS state_message,
              state_change_time, last_frame_time, frames_sampled, reconnect_attempts, owner"""


@dataclass(frozen=True)
class StoredSource:
    """A row: the source as last written by its owner, with the URI as given (credentials included)."""

    source: source_pb2.Source
    uri: str
    owner: str | None = None

    def redacted(self) -> source_pb2.Source:
        """The source as shown to callers."""
        shown = source_pb2.Source()
        shown.CopyFrom(self.source)
        shown.uri = redact(self.uri)
        return shown


def _stored(row: Any) -> StoredSource:
    source = source_pb2.Source(
        source_id=row["source_id"],
        camera_id=row["camera_id"],
        kind=row["kind"],
        uri=row["uri"],
        target_fps=row["target_fps"],
        loop=row["loop"],
        state=row["state"],
        state_message=row["state_message"],
        frames_sampled=row["frames_sampled"],
        reconnect_attempts=row["reconnect_attempts"],
    )
    source.create_time.FromDatetime(row["create_time"])
    source.state_change_time.FromDatetime(row["state_change_time"])
    if row["last_frame_time"] is not None:
        source.last_frame_time.FromDatetime(row["last_frame_time"])
    return StoredSource(source, row["uri"], row.get("owner"))


def _time(stamp: Any) -> datetime | None:
    return stamp.ToDatetime(tzinfo=UTC) if stamp.seconds or stamp.nanos else None


class SourceTable:
    """Every statement on ``ingest.sources``."""

    def __init__(self, pool: Pool, replica_id: str, lease_seconds: float) -> None:
        self._pool = pool
        self._me = replica_id
        self._lease_seconds = lease_seconds

    async def insert(self, source: source_pb2.Source) -> datetime | None:
        """Store a new source leased to this replica; its create time, or None when the id is taken.

        Raises ``asyncpg.ForeignKeyViolationError`` for an unregistered camera.
        """
        row = await self._pool.fetchrow(
            """INSERT INTO ingest.sources (source_id, camera_id, kind, uri, target_fps, loop, owner, lease_expires)
               VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))
               ON CONFLICT (source_id) DO NOTHING RETURNING create_time""",
            source.source_id,
            source.camera_id,
            source.kind,
            source.uri,
            source.target_fps,
            source.loop,
            self._me,
            self._lease_seconds,
        )
        return None if row is None else row["create_time"]

    async def delete(self, source_id: str) -> StoredSource | None:
        """Delete a source; its last stored row, or None when there was none."""
        row = await self._pool.fetchrow(
            f"DELETE FROM ingest.sources WHERE source_id = $1 RETURNING {_COLUMNS}",  # noqa: S608 - constant fragments; every value is a parameter
            source_id,
        )
        return None if row is None else _stored(row)

    async def delete_for_camera(self, camera_id: str) -> list[str]:
        """Delete a camera's sources; their ids."""
        rows = await self._pool.fetch("DELETE FROM ingest.sources WHERE camera_id = $1 RETURNING source_id", camera_id)
        return [row["source_id"] for row in rows]

    async def page(self, after: str | None, limit: int, camera_id: str, states: Sequence[int]) -> list[StoredSource]:
        """Up to ``limit`` sources ordered by id, after ``after``, filtered by camera and (listed) state."""
        rows = await self._pool.fetch(
            f"""SELECT * FROM (SELECT {_LISTED} FROM ingest.sources) AS listed
                WHERE source_id > $2 AND ($3 = '' OR camera_id = $3)
                  AND (cardinality($4::smallint[]) = 0 OR state = ANY($4::smallint[]))
                ORDER BY source_id LIMIT $5""",  # noqa: S608 - constant fragments; every value is a parameter
            list(FINAL_STATES),
            after or "",
            camera_id,
            list(states),
            limit,
        )
        return [_stored(row) for row in rows]

    async def count_by_state(self) -> dict[int, int]:
        """How many sources are in each (listed) state."""
        rows = await self._pool.fetch(
            f"SELECT state, count(*) AS n FROM (SELECT {_LISTED} FROM ingest.sources) AS listed GROUP BY state",  # noqa: S608 - constant fragments; every value is a parameter
            list(FINAL_STATES),
        )
        return {row["state"]: row["n"] for row in rows}

    async def renew(self, running: Iterable[source_pb2.Source], released: Iterable[str]) -> list[StoredSource]:
        """One lease round: store the state of the sources this replica runs, give up ``released`` ones (their
        runners ended), then renew this replica's leases and take over lapsed ones; the sources now leased to it.
        """
        states = list(running)
        async with self._pool.acquire() as connection, connection.transaction():
            await self._save(connection, states)
            await connection.execute(
                "UPDATE ingest.sources SET owner = NULL, lease_expires = '-infinity'"
                " WHERE owner = $1 AND source_id = ANY($2::text[])",
                self._me,
                list(released),
            )
            rows = await connection.fetch(
                f"""UPDATE ingest.sources SET owner = $1, lease_expires = now() + make_interval(secs => $2)
                    WHERE state <> ALL($3::smallint[]) AND (owner = $1 OR lease_expires < now())
                    RETURNING {_COLUMNS}""",  # noqa: S608 - constant fragments; every value is a parameter
                self._me,
                self._lease_seconds,
                list(FINAL_STATES),
            )
        return [_stored(row) for row in rows]

    async def release_all(self, running: Iterable[source_pb2.Source]) -> None:
        """Store the final state of this replica's runners and give up all its leases (graceful stop)."""
        async with self._pool.acquire() as connection, connection.transaction():
            await self._save(connection, list(running))
            await connection.execute(
                """UPDATE ingest.sources SET owner = NULL, lease_expires = '-infinity',
                       state = CASE WHEN state = ANY($2::smallint[]) THEN state ELSE $3 END,
                       state_message = CASE WHEN state = ANY($2::smallint[]) THEN state_message
                                       ELSE 'waiting for an ingest replica to take it over' END
                   WHERE owner = $1""",
                self._me,
                list(FINAL_STATES),
                source_pb2.SOURCE_STATE_CONNECTING,
            )

    async def _save(self, connection: Connection, sources: list[source_pb2.Source]) -> None:
        # Only where this replica still owns the row: a replica that lost its lease must not overwrite the state
        # written by the one that took over.
        if not sources:
            return
        await connection.execute(
            """UPDATE ingest.sources AS s SET state = v.state, state_message = v.state_message,
                   state_change_time = COALESCE(v.state_change_time, s.state_change_time),
                   last_frame_time = v.last_frame_time, frames_sampled = v.frames_sampled,
                   reconnect_attempts = v.reconnect_attempts
               FROM unnest($2::text[], $3::smallint[], $4::text[], $5::timestamptz[], $6::timestamptz[],
                           $7::bigint[], $8::integer[])
                    AS v(source_id, state, state_message, state_change_time, last_frame_time, frames_sampled,
                         reconnect_attempts)
               WHERE s.source_id = v.source_id AND s.owner = $1""",
            self._me,
            [s.source_id for s in sources],
            [s.state for s in sources],
            [s.state_message for s in sources],
            [_time(s.state_change_time) for s in sources],
            [_time(s.last_frame_time) for s in sources],
            [s.frames_sampled for s in sources],
            [s.reconnect_attempts for s in sources],
        )
