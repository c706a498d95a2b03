"""Camera registry over a real ingest server and PostgreSQL: CRUD, idempotency, validation, paging, roles.

No frame is sent here, so ingest never calls the recognize or hotlist service: they are not started.
"""

from __future__ import annotations

import grpc
import grpc.aio
import pytest
from google.protobuf import field_mask_pb2

from anpr.api.ingest.v1 import camera_pb2, ingest_service_pb2
from testkit.ingest_env import IngestEnvironment, fixed_camera, register, stub


async def test_camera_crud(env: IngestEnvironment) -> None:
    server = await env.start_ingest(dependencies=False)
    admin = env.metadata("ingest-admin")
    async with grpc.aio.insecure_channel(server.address) as channel:
        ingest = stub(channel)
        created = await ingest.RegisterCamera(
            ingest_service_pb2.RegisterCameraRequest(camera=fixed_camera("cam-a", owner_unit="metro")),
            metadata=admin,
        )
        assert created.created
        assert created.camera.create_time.seconds > 0
        again = await ingest.RegisterCamera(
            ingest_service_pb2.RegisterCameraRequest(camera=fixed_camera("cam-a", owner_unit="metro")),
            metadata=admin,
        )
        assert not again.created
        with pytest.raises(grpc.aio.AioRpcError) as conflict:
            await register(ingest, env, fixed_camera("cam-a", owner_unit="other"))
        assert conflict.value.code() == grpc.StatusCode.ALREADY_EXISTS

        dash = camera_pb2.Camera(camera_id="dash-1", kind=camera_pb2.CAMERA_KIND_DASH, view_direction_degrees=0)
        dash.moving.SetInParent()
        await register(ingest, env, dash)

        got = await ingest.GetCamera(ingest_service_pb2.GetCameraRequest(camera_id="dash-1"), metadata=admin)
        assert got.camera.WhichOneof("placement") == "moving"
        assert got.camera.connectivity == camera_pb2.CAMERA_CONNECTIVITY_UNSPECIFIED

        updated = await ingest.UpdateCamera(
            ingest_service_pb2.UpdateCameraRequest(
                camera=camera_pb2.Camera(camera_id="cam-a", display_name="N1 gantry", disabled=True),
                update_mask=field_mask_pb2.FieldMask(paths=["display_name", "disabled"]),
            ),
            metadata=admin,
        )
        assert updated.camera.display_name == "N1 gantry"
        assert updated.camera.disabled
        assert updated.camera.owner_unit == "metro"

        listed = await ingest.ListCameras(ingest_service_pb2.ListCamerasRequest(), metadata=admin)
        assert [c.camera_id for c in listed.cameras] == ["dash-1"]  # disabled ones only on request
        listed = await ingest.ListCameras(
            ingest_service_pb2.ListCamerasRequest(include_disabled=True, kinds=[camera_pb2.CAMERA_KIND_FIXED]),
            metadata=admin,
        )
        assert [c.camera_id for c in listed.cameras] == ["cam-a"]

        await ingest.DeleteCamera(ingest_service_pb2.DeleteCameraRequest(camera_id="cam-a"), metadata=admin)
        for call in (
            ingest.GetCamera(ingest_service_pb2.GetCameraRequest(camera_id="cam-a"), metadata=admin),
            ingest.DeleteCamera(ingest_service_pb2.DeleteCameraRequest(camera_id="cam-a"), metadata=admin),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await call
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_cameras_pages(env: IngestEnvironment) -> None:
    server = await env.start_ingest(dependencies=False)
    async with grpc.aio.insecure_channel(server.address) as channel:
        ingest = stub(channel)
        for index in range(5):
            await register(ingest, env, fixed_camera(f"cam-{index}"))
        seen: list[str] = []
        request = ingest_service_pb2.ListCamerasRequest()
        request.page.page_size = 2
        while True:
            reply = await ingest.ListCameras(request, metadata=env.metadata("ingest-admin"))
            seen.extend(c.camera_id for c in reply.cameras)
            if not reply.page.next_page_token:
                break
            request.page.page_token = reply.page.next_page_token
        assert seen == [f"cam-{i}" for i in range(5)]


@pytest.mark.parametrize(
    ("camera", "mentions"),
    [
        (camera_pb2.Camera(camera_id="bad id!", kind=camera_pb2.CAMERA_KIND_BODY), "camera_id"),
        (camera_pb2.Camera(camera_id="no-kind"), "kind"),
        (camera_pb2.Camera(camera_id="fixed-nowhere", kind=camera_pb2.CAMERA_KIND_FIXED), "location"),
        (fixed_camera("wrong-view", view_direction_degrees=360), "view_direction"),
    ],
)
async def test_invalid_cameras_are_refused(env: IngestEnvironment, camera: camera_pb2.Camera, mentions: str) -> None:
    server = await env.start_ingest(dependencies=False)
    async with grpc.aio.insecure_channel(server.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await register(stub(channel), env, camera)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert mentions in (refused.value.details() or "")


async def test_cameras_cannot_register_cameras(env: IngestEnvironment) -> None:
    server = await env.start_ingest(dependencies=False)
    async with grpc.aio.insecure_channel(server.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await stub(channel).RegisterCamera(
                ingest_service_pb2.RegisterCameraRequest(camera=fixed_camera("cam-x")), metadata=env.metadata("camera")
            )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_plate_regions_and_crops_are_stored_normalised_and_checked(env: IngestEnvironment) -> None:
    server = await env.start_ingest(dependencies=False)
    admin = env.metadata("ingest-admin")
    async with grpc.aio.insecure_channel(server.address) as channel:
        ingest = stub(channel)
        camera = fixed_camera("gate-1")
        camera.plate_regions.extend(["za-wc", "ZA", "za"])
        camera.sends_plate_crops = True
        created = await register(ingest, env, camera)
        assert list(created.plate_regions) == ["ZA-WC", "ZA"]
        assert created.sends_plate_crops
        bad = fixed_camera("gate-2")
        bad.plate_regions.append("South Africa")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await register(ingest, env, bad)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        updated = await ingest.UpdateCamera(
            ingest_service_pb2.UpdateCameraRequest(
                camera=camera_pb2.Camera(camera_id="gate-1", plate_regions=["SK"]),
                update_mask=field_mask_pb2.FieldMask(paths=["plate_regions", "sends_plate_crops"]),
            ),
            metadata=admin,
        )
        assert list(updated.camera.plate_regions) == ["SK"]
        assert not updated.camera.sends_plate_crops
