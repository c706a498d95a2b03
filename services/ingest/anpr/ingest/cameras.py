"""Camera registry in PostgreSQL (schema ``ingest``): validation, CRUD and the protobuf mapping."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from google.protobuf import field_mask_pb2

from anpr.api.common.v1 import geo_pb2
from anpr.api.ingest.v1 import camera_pb2
from anpr.domain.regions import normalise_regions
from anpr.ingest.paging import decode_token, encode_token, page_size
from anpr.runtime.database import Pool
from anpr.runtime.errors import AlreadyExists, InvalidArgument, NotFound
from anpr.runtime.validation import check_id

# Starts with a letter or digit, as the table's CHECK requires; always matched whole (fullmatch).
CAMERA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_KINDS = {
    camera_pb2.CAMERA_KIND_FIXED: "fixed",
    camera_pb2.CAMERA_KIND_MOBILE: "mobile",
    camera_pb2.CAMERA_KIND_DASH: "dash",
    camera_pb2.CAMERA_KIND_BODY: "body",
}
_KIND_VALUES = {name: value for value, name in _KINDS.items()}
UPDATABLE_PATHS = frozenset(
    {
        "kind",
        "display_name",
        "location",
        "moving",
        "view_direction_degrees",
        "owner_unit",
        "description",
        "labels",
        "limits",
        "limits.max_frame_bytes",
        "limits.max_frames_per_second",
        "disabled",
        "plate_regions",
        "sends_plate_crops",
    }
)
_COLUMNS = (
    "camera_id, kind, display_name, latitude, longitude, view_direction_degrees, owner_unit, description, labels,"
    " max_frame_bytes, max_frames_per_second, disabled, plate_regions, sends_plate_crops, create_time, update_time"
)


def check_camera_id(camera_id: str, field: str = "camera_id") -> str:
    """The id when valid, else INVALID_ARGUMENT."""
    return check_id(
        CAMERA_ID, camera_id, f"{field} must be 1-64 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit"
    )


# Labels are small key/value tags: bounded so that no camera's row can grow without limit (issue 19: three
# cameras with 6 MB labels made ListCameras fail for every caller).
MAX_LABELS = 64
MAX_LABEL_KEY_CHARS = 63
MAX_LABEL_VALUE_CHARS = 256
# A ListCameras page stops short of its size once its cameras add up to this many bytes (gRPC's default message
# limit is 4 MiB), and always holds at least one camera.
MAX_PAGE_BYTES = 1024 * 1024


def check_labels(labels: Mapping[str, str], field: str = "camera.labels") -> None:
    """INVALID_ARGUMENT for too many labels, or a key or value too long, empty (keys) or holding NUL."""
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"{field} has {len(labels)} labels; at most {MAX_LABELS} are allowed")
    for key, value in labels.items():
        if not key or len(key) > MAX_LABEL_KEY_CHARS or "\x00" in key:
            raise InvalidArgument(f"{field} keys must be 1-{MAX_LABEL_KEY_CHARS} characters without NUL")
        if len(value) > MAX_LABEL_VALUE_CHARS or "\x00" in value:
            raise InvalidArgument(f"{field} values must be at most {MAX_LABEL_VALUE_CHARS} characters without NUL")


def validate(camera: camera_pb2.Camera) -> None:
    """Raise INVALID_ARGUMENT for a camera that cannot be stored."""
    check_camera_id(camera.camera_id, "camera.camera_id")
    if camera.kind not in _KINDS:
        raise InvalidArgument("camera.kind is required: FIXED, MOBILE, DASH or BODY")
    placement = camera.WhichOneof("placement")
    if camera.kind == camera_pb2.CAMERA_KIND_FIXED and placement != "location":
        raise InvalidArgument("a FIXED camera needs camera.location")
    if placement == "location":
        point = camera.location
        if not (-90 <= point.latitude <= 90 and -180 <= point.longitude <= 180):
            raise InvalidArgument("camera.location is outside latitude [-90, 90] / longitude [-180, 180]")
    if camera.HasField("view_direction_degrees") and not 0 <= camera.view_direction_degrees < 360:
        raise InvalidArgument("camera.view_direction_degrees must be in [0, 360)")
    if camera.limits.max_frames_per_second < 0:
        raise InvalidArgument("camera.limits.max_frames_per_second must not be negative")
    for text, name in ((camera.display_name, "display_name"), (camera.owner_unit, "owner_unit")):
        if len(text) > 256:
            raise InvalidArgument(f"camera.{name} is longer than 256 characters")
    if len(camera.description) > 4096:
        raise InvalidArgument("camera.description is longer than 4096 characters")
    normalise_regions(camera.plate_regions, "camera.plate_regions")
    check_labels(camera.labels)


def _row_values(camera: camera_pb2.Camera) -> list[Any]:
    located = camera.WhichOneof("placement") == "location"
    return [
        camera.camera_id,
        _KINDS[camera.kind],
        camera.display_name,
        camera.location.latitude if located else None,
        camera.location.longitude if located else None,
        camera.view_direction_degrees if camera.HasField("view_direction_degrees") else None,
        camera.owner_unit,
        camera.description,
        json.dumps(dict(camera.labels), sort_keys=True),
        camera.limits.max_frame_bytes or None,
        camera.limits.max_frames_per_second or None,
        camera.disabled,
        list(normalise_regions(camera.plate_regions, "camera.plate_regions")),
        camera.sends_plate_crops,
    ]


def from_row(row: asyncpg.Record) -> camera_pb2.Camera:
    """The protobuf camera of a database row (output-only online fields are filled in by the caller)."""
    camera = camera_pb2.Camera(
        camera_id=row["camera_id"],
        kind=_KIND_VALUES[row["kind"]],
        display_name=row["display_name"],
        owner_unit=row["owner_unit"],
        description=row["description"],
        labels=json.loads(row["labels"]) if isinstance(row["labels"], str) else dict(row["labels"]),
        disabled=row["disabled"],
        plate_regions=row["plate_regions"],
        sends_plate_crops=row["sends_plate_crops"],
    )
    if row["latitude"] is not None:
        camera.location.CopyFrom(geo_pb2.GeoPoint(latitude=row["latitude"], longitude=row["longitude"]))
    else:
        camera.moving.SetInParent()
    if row["view_direction_degrees"] is not None:
        camera.view_direction_degrees = row["view_direction_degrees"]
    camera.limits.max_frame_bytes = row["max_frame_bytes"] or 0
    camera.limits.max_frames_per_second = row["max_frames_per_second"] or 0.0
    camera.create_time.FromDatetime(row["create_time"])
    camera.update_time.FromDatetime(row["update_time"])
    return camera


def _same(a: camera_pb2.Camera, b: camera_pb2.Camera) -> bool:
    return _row_values(a) == _row_values(b)


class CameraRepository:
    """CRUD on ``ingest.cameras``."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def register(self, camera: camera_pb2.Camera) -> tuple[camera_pb2.Camera, bool]:
        """Insert the camera; (stored camera, created). Identical re-registration is a no-op."""
        validate(camera)
        values = _row_values(camera)
        row = await self._pool.fetchrow(
            f"""INSERT INTO ingest.cameras (camera_id, kind, display_name, latitude, longitude,
                    view_direction_degrees, owner_unit, description, labels, max_frame_bytes,
                    max_frames_per_second, disabled, plate_regions, sends_plate_crops)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14)
                ON CONFLICT (camera_id) DO NOTHING
                RETURNING {_COLUMNS}""",  # noqa: S608  (column list is a constant)
            *values,
        )
        if row is not None:
            return from_row(row), True
        existing = await self.get(camera.camera_id)
        if _same(existing, camera):
            return existing, False
        raise AlreadyExists(f"camera {camera.camera_id} already exists with other settings; use UpdateCamera")

    async def get(self, camera_id: str) -> camera_pb2.Camera:
        """One camera, or NOT_FOUND."""
        check_camera_id(camera_id)
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM ingest.cameras WHERE camera_id = $1", camera_id)  # noqa: S608
        if row is None:
            raise NotFound(f"camera {camera_id} is not registered")
        return from_row(row)

    async def find(self, camera_id: str) -> camera_pb2.Camera | None:
        """One camera, or None."""
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM ingest.cameras WHERE camera_id = $1", camera_id)  # noqa: S608
        return None if row is None else from_row(row)

    async def list(
        self, requested_size: int, token: str, kinds: Sequence[int], owner_unit: str, include_disabled: bool
    ) -> tuple[list[camera_pb2.Camera], str]:
        """A page of cameras ordered by id, and the next page token ('' at the end)."""
        kind_names = sorted(_KINDS[k] for k in kinds if k in _KINDS)  # type: ignore[index]
        if len(kind_names) != len(set(kinds)):
            raise InvalidArgument("kinds contains an unknown camera kind")
        filters = [kind_names, owner_unit, include_disabled]
        after = decode_token(token, filters)
        size = page_size(requested_size)
        rows = await self._pool.fetch(
            f"""SELECT {_COLUMNS} FROM ingest.cameras
                WHERE ($1::text IS NULL OR camera_id > $1)
                  AND (cardinality($2::text[]) = 0 OR kind = ANY($2))
                  AND ($3 = '' OR owner_unit = $3)
                  AND ($4 OR NOT disabled)
                ORDER BY camera_id LIMIT $5""",  # noqa: S608
            after,
            kind_names,
            owner_unit,
            include_disabled,
            size + 1,
        )
        cameras: list[camera_pb2.Camera] = []
        total = 0
        for row in rows[:size]:
            camera = from_row(row)
            total += camera.ByteSize()
            if cameras and total > MAX_PAGE_BYTES:
                break  # the page is full by bytes: the next one starts after the last camera kept
            cameras.append(camera)
        more = len(rows) > len(cameras)
        next_token = encode_token(cameras[-1].camera_id, filters) if more and cameras else ""
        return cameras, next_token

    async def update(self, camera: camera_pb2.Camera, mask: field_mask_pb2.FieldMask) -> camera_pb2.Camera:
        """Apply the masked fields of ``camera`` to the stored camera."""
        if not mask.paths:
            raise InvalidArgument("update_mask is required, for example display_name,disabled")
        unknown = sorted(set(mask.paths) - UPDATABLE_PATHS)
        if unknown:
            raise InvalidArgument(f"update_mask names fields that cannot be changed: {', '.join(unknown)}")
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                f"SELECT {_COLUMNS} FROM ingest.cameras WHERE camera_id = $1 FOR UPDATE",  # noqa: S608
                check_camera_id(camera.camera_id, "camera.camera_id"),
            )
            if row is None:
                raise NotFound(f"camera {camera.camera_id} is not registered")
            merged = from_row(row)
            for path in sorted(mask.paths):
                _apply(merged, camera, path)
            validate(merged)
            values = _row_values(merged)
            updated = await connection.fetchrow(
                f"""UPDATE ingest.cameras SET kind = $2, display_name = $3, latitude = $4, longitude = $5,
                        view_direction_degrees = $6, owner_unit = $7, description = $8, labels = $9::jsonb,
                        max_frame_bytes = $10, max_frames_per_second = $11, disabled = $12,
                        plate_regions = $13, sends_plate_crops = $14, update_time = now()
                    WHERE camera_id = $1 RETURNING {_COLUMNS}""",  # noqa: S608
                *values,
            )
        assert updated is not None
        return from_row(updated)

    async def delete(self, camera_id: str) -> None:
        """Remove a camera, or NOT_FOUND."""
        status = await self._pool.execute("DELETE FROM ingest.cameras WHERE camera_id = $1", check_camera_id(camera_id))
        if status.endswith(" 0"):
            raise NotFound(f"camera {camera_id} is not registered")


def _apply(target: camera_pb2.Camera, source: camera_pb2.Camera, path: str) -> None:
    if path == "location":
        if source.WhichOneof("placement") == "location":
            target.location.CopyFrom(source.location)
        else:
            target.moving.SetInParent()
    elif path == "moving":
        target.moving.SetInParent()
    elif path == "view_direction_degrees":
        if source.HasField("view_direction_degrees"):
            target.view_direction_degrees = source.view_direction_degrees
        else:
            target.ClearField("view_direction_degrees")
    elif path == "labels":
        target.labels.clear()
        target.labels.update(source.labels)
    elif path == "plate_regions":
        del target.plate_regions[:]
        target.plate_regions.extend(source.plate_regions)
    elif path == "limits":
        target.limits.CopyFrom(source.limits)
    elif path == "limits.max_frame_bytes":
        target.limits.max_frame_bytes = source.limits.max_frame_bytes
    elif path == "limits.max_frames_per_second":
        target.limits.max_frames_per_second = source.limits.max_frames_per_second
    else:
        setattr(target, path, getattr(source, path))
