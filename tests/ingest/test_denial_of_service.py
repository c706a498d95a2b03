"""Issue 19, denial of service on the ingest service: bounded camera labels, ListCameras paged by bytes too."""

from __future__ import annotations

import json

import asyncpg
import grpc
import grpc.aio
import pytest
from google.protobuf import field_mask_pb2

from anpr.api.ingest.v1 import camera_pb2, ingest_service_pb2
from anpr.ingest.access import ACCESS_POLICY, SERVICE_NAME
from anpr.ingest.cameras import MAX_LABEL_KEY_CHARS, MAX_LABEL_VALUE_CHARS, MAX_LABELS
from testkit.ingest_env import IngestEnvironment, fixed_camera, register, stub


def allowed(env: IngestEnvironment, method: str) -> tuple[tuple[str, str], ...]:
    """Metadata of a role the access policy allows for ``method`` (whatever the roles are named)."""
    return env.metadata(sorted(ACCESS_POLICY[f"/{SERVICE_NAME}/{method}"])[0])


@pytest.mark.parametrize(
    "labels",
    [
        {f"k{i}": "v" for i in range(MAX_LABELS + 1)},
        {"k" * (MAX_LABEL_KEY_CHARS + 1): "v"},
        {"site": "v" * (MAX_LABEL_VALUE_CHARS + 1)},
        {"site": "v" * 6_000_000},  # the measured attack: 6 MB labels
        {"": "v"},
        {"site": "a\x00b"},
    ],
    ids=["count", "key", "value", "6mb", "empty-key", "nul"],
)
async def test_oversized_labels_are_refused(env: IngestEnvironment, labels: dict[str, str]) -> None:
    server = await env.start_ingest(dependencies=False, max_message_bytes=str(16 * 1024 * 1024))
    async with grpc.aio.insecure_channel(
        server.address, options=[("grpc.max_send_message_length", 16 * 1024 * 1024)]
    ) as channel:
        ingest = stub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await register(ingest, env, fixed_camera("cam-big", labels=labels))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "labels" in (refused.value.details() or "")
        await register(ingest, env, fixed_camera("cam-ok", labels={"site": "N1"}))
        with pytest.raises(grpc.aio.AioRpcError) as update:
            await ingest.UpdateCamera(
                ingest_service_pb2.UpdateCameraRequest(
                    camera=camera_pb2.Camera(camera_id="cam-ok", labels=labels),
                    update_mask=field_mask_pb2.FieldMask(paths=["labels"]),
                ),
                metadata=allowed(env, "UpdateCamera"),
            )
        assert update.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_list_cameras_pages_by_bytes_past_cameras_with_huge_labels(env: IngestEnvironment) -> None:
    # Before: three cameras with 6 MB labels made every ListCameras page exceed the 4 MiB message limit, so the
    # call failed for everyone. Rows stored before labels were bounded are still listed, a page at a time.
    server = await env.start_ingest(dependencies=False)
    async with grpc.aio.insecure_channel(server.address) as channel:
        ingest = stub(channel)
        for index in range(6):
            await register(ingest, env, fixed_camera(f"cam-{index}"))
        connection = await asyncpg.connect(env.database_url)
        try:
            await connection.execute(
                "UPDATE ingest.cameras SET labels = $1::jsonb WHERE camera_id = ANY($2)",
                json.dumps({"blob": "x" * 1_500_000}),
                ["cam-1", "cam-2", "cam-3"],
            )
        finally:
            await connection.close()
        seen: list[str] = []
        pages = 0
        request = ingest_service_pb2.ListCamerasRequest()
        while True:
            reply = await ingest.ListCameras(request, metadata=allowed(env, "ListCameras"), timeout=10)
            pages += 1
            assert reply.ByteSize() < 4 * 1024 * 1024
            seen.extend(c.camera_id for c in reply.cameras)
            if not reply.page.next_page_token:
                break
            request.page.page_token = reply.page.next_page_token
    assert seen == [f"cam-{i}" for i in range(6)]
    assert pages >= 2
