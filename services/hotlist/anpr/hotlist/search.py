"""SearchReads (POPIA): every search states a purpose, is tied to the caller, and leaves an audit row.

The audit row is written in the same transaction as the search and carries the filters and the number of reads
returned, so there is no search without its record. Results are paged newest first by (last seen, event id).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from anpr.hotlist import audit, metrics
from anpr.hotlist.db import Pool
from anpr.hotlist.paging import decode_token, encode_token
from anpr.hotlist.patterns import InvalidPattern, is_pattern, normalise_pattern, to_like
from anpr.hotlist.plates import Folding, normalise_plate
from anpr.runtime.errors import InvalidArgument
from anpr.runtime.purpose import check_purpose


@dataclass(frozen=True)
class Circle:
    """Centre (degrees) and radius (metres)."""

    latitude: float
    longitude: float
    radius_meters: float


@dataclass(frozen=True)
class Rectangle:
    """South-west and north-east corners (degrees); west > east crosses the antimeridian."""

    south: float
    west: float
    north: float
    east: float


@dataclass(frozen=True)
class Polygon:
    """Vertices (degrees) in order."""

    latitudes: tuple[float, ...]
    longitudes: tuple[float, ...]


Area = Circle | Rectangle | Polygon


@dataclass(frozen=True)
class SearchQuery:
    """The filters of one search."""

    purpose: str
    case_reference: str
    plate_pattern: str
    ocr_tolerant: bool
    start: datetime | None
    end: datetime | None
    camera_ids: Sequence[str]
    area: Area | None
    hits_only: bool
    include_crops: bool


@dataclass(frozen=True)
class FoundRead:
    """One read in a search result."""

    event: bytes
    crop: bytes | None
    store_time: datetime
    alert_ids: list[int]
    purge_time: datetime


def _check(query: SearchQuery) -> str:
    """Validate; returns the normalised plate or pattern ('' for any)."""
    check_purpose(query.purpose, query.case_reference)
    if query.start is None or query.end is None:
        raise InvalidArgument("time_range needs both start_time and end_time")
    if query.start >= query.end:
        raise InvalidArgument("time_range must end after it starts")
    if len(query.camera_ids) > 1000 or any(len(c) > 128 or "\x00" in c for c in query.camera_ids):
        raise InvalidArgument("camera_ids: at most 1000 ids of at most 128 characters")
    if isinstance(query.area, Circle) and not 0 < query.area.radius_meters <= 1_000_000:
        raise InvalidArgument("area circle radius must be in (0, 1000 km]")
    if isinstance(query.area, Polygon) and not 3 <= len(query.area.latitudes) <= 1000:
        raise InvalidArgument("area polygon needs 3 to 1000 vertices")
    if not query.plate_pattern:
        if not query.camera_ids and query.area is None:
            raise InvalidArgument("a search without plate_pattern needs a camera or area filter")
        return ""
    try:
        if is_pattern(query.plate_pattern):
            return normalise_pattern(query.plate_pattern)
        return normalise_plate(query.plate_pattern)
    except InvalidPattern:
        raise
    except InvalidArgument as exc:
        raise InvalidArgument(f"plate_pattern: {exc.message}") from None


class ReadSearch:
    """Answers audited searches of stored reads."""

    def __init__(self, pool: Pool, folding: Folding, keep_without_hits: timedelta, keep_with_hits: timedelta) -> None:
        self._pool = pool
        self._folding = folding
        self._keep_without_hits = keep_without_hits
        self._keep_with_hits = keep_with_hits

    async def search(self, query: SearchQuery, token: str, size: int) -> tuple[list[FoundRead], str, int]:
        """One page of reads, the next page token, and the id of the audit row written for this search."""
        pattern = _check(query)
        filters = {k: v for k, v in asdict(query).items() if k not in ("purpose", "case_reference", "include_crops")}
        after = decode_token(token, filters)
        like = to_like(pattern) if pattern else None
        folded_like = to_like(self._folding.fold(pattern)) if pattern else None
        area = _area_parameters(query.area)
        after_time = datetime.fromisoformat(after[0]) if after else None
        after_id = after[1] if after else ""
        async with self._pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                """SELECT r.event_id, r.event, CASE WHEN $21 THEN r.crop END AS crop, r.store_time, r.last_seen,
                          r.has_hits,
                          ARRAY(SELECT a.alert_id FROM hotlist.alerts a
                                 WHERE a.event_id = r.event_id ORDER BY a.alert_id) AS alert_ids
                     FROM hotlist.reads r
                    WHERE r.last_seen >= $1 AND r.last_seen < $2
                      AND ($3::text IS NULL OR r.plate LIKE $3
                           OR ($4 AND (r.plate_folded LIKE $5
                                       OR EXISTS (SELECT 1 FROM unnest(r.alternatives_folded) x WHERE x LIKE $5))))
                      AND (cardinality($6::text[]) = 0 OR r.camera_id = ANY($6))
                      AND (NOT $7 OR r.has_hits)
                      AND ($8::text IS NULL
                           OR ($8 = 'circle' AND r.latitude IS NOT NULL
                               AND hotlist.distance_meters($9::float8, $10::float8, r.latitude, r.longitude)
                                   <= $11::float8)
                           OR ($8 = 'rectangle' AND r.latitude BETWEEN $12::float8 AND $13::float8
                               AND CASE WHEN $14::float8 <= $15::float8 THEN r.longitude BETWEEN $14 AND $15
                                        ELSE r.longitude >= $14 OR r.longitude <= $15 END)
                           OR ($8 = 'polygon' AND r.latitude IS NOT NULL
                               AND hotlist.point_in_polygon(r.latitude, r.longitude, $16::float8[], $17::float8[])))
                      AND ($18::timestamptz IS NULL OR (r.last_seen, r.event_id) < ($18, $19::text))
                    ORDER BY r.last_seen DESC, r.event_id DESC
                    LIMIT $20""",
                query.start,
                query.end,
                like,
                query.ocr_tolerant,
                folded_like,
                list(query.camera_ids),
                query.hits_only,
                *area,
                after_time,
                after_id,
                size + 1,
                query.include_crops,
            )
            more = len(rows) > size
            rows = rows[:size]
            audit_id = await audit.record(
                connection,
                "READS_SEARCHED",
                target_type="reads",
                purpose=query.purpose.strip(),
                case_reference=query.case_reference.strip(),
                details={"filters": _jsonable(filters), "result_count": len(rows), "page_token": bool(token)},
            )
        metrics.SEARCHES.inc()
        found = [
            FoundRead(
                event=bytes(row["event"]),
                crop=None if row["crop"] is None else bytes(row["crop"]),
                store_time=row["store_time"],
                alert_ids=list(row["alert_ids"]),
                purge_time=row["last_seen"] + (self._keep_with_hits if row["has_hits"] else self._keep_without_hits),
            )
            for row in rows
        ]
        next_token = encode_token([rows[-1]["last_seen"].isoformat(), rows[-1]["event_id"]], filters) if more else ""
        return found, next_token, audit_id


def _area_parameters(area: Area | None) -> list[Any]:
    """Parameters $8-$17 of the search statement."""
    values: list[Any] = [None, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, [], []]
    if isinstance(area, Circle):
        values[0:4] = ["circle", area.latitude, area.longitude, area.radius_meters]
    elif isinstance(area, Rectangle):
        values[0] = "rectangle"
        values[4:8] = [area.south, area.north, area.west, area.east]
    elif isinstance(area, Polygon):
        values[0] = "polygon"
        values[8:10] = [list(area.latitudes), list(area.longitudes)]
    return values


def _jsonable(filters: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value if isinstance(value, str | int | float | bool | list) else str(value)
        for key, value in filters.items()
    }
