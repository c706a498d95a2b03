"""The recognize service on a real loopback server: the batch contract, bad input, overload, streaming, reload."""

from __future__ import annotations

import asyncio
import shutil
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import pytest

from anpr.api.common.v1 import image_pb2
from anpr.api.recognize.v1 import recognition_pb2, recognize_service_pb2, recognize_service_pb2_grpc
from anpr.runtime.server import ServiceServer
from testkit.plate_models import build_constant_reader, encode, plate_frame, write_manifest
from testkit.services import StartService

PLATE_BOX = (400, 300, 256, 64)


def _frame(box: tuple[int, int, int, int] = PLATE_BOX) -> bytes:
    return encode(plate_frame("CA123456", (1280, 720), box))


def _image(data: bytes, image_id: str) -> recognition_pb2.ImageInput:
    return recognition_pb2.ImageInput(image_id=image_id, image=image_pb2.EncodedImage(data=data))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares huge dimensions (a decompression bomb's header) with almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk)) + b"\0" * 16
    )


def _stub(server: ServiceServer) -> tuple[grpc.aio.Channel, recognize_service_pb2_grpc.RecognizeServiceAsyncStub]:
    channel = grpc.aio.insecure_channel(server.address)
    return channel, recognize_service_pb2_grpc.RecognizeServiceStub(channel)


def _auth(tokens: dict[str, str], role: str = "ingest-service") -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {tokens[role]}"),)


async def test_batch_reads_good_images_and_reports_bad_ones_alone(
    start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service("recognize")
    good = _frame()
    images = [
        _image(good, "good"),
        _image(b"", "empty"),
        _image(b"this is not an image at all", "text"),
        _image(good[: len(good) // 2], "truncated"),
        _image(_png_header_only(100_000, 100_000), "bomb"),
        _image(_png_header_only(0, 10), "zero"),
        _image(encode(plate_frame("CA123456", (640, 480), (100, 100, 256, 64)), ".jpg"), "jpeg"),
    ]
    channel, stub = _stub(server)
    async with channel:
        reply = await stub.Recognize(recognize_service_pb2.RecognizeRequest(images=images), metadata=_auth(tokens))
    by_id = {result.image_id: result for result in reply.results}
    assert [result.image_id for result in reply.results] == [image.image_id for image in images]
    first = by_id["good"]
    assert not first.HasField("error")
    assert (first.image_width, first.image_height) == (1280, 720)
    (plate,) = first.plates
    assert plate.reading.text == "CA123456"
    box = plate.box
    # The content detector's box, mapped back from letterbox to original pixels, lies on the pasted plate.
    assert abs(box.x - PLATE_BOX[0]) < 20
    assert abs(box.y - PLATE_BOX[1]) < 20
    assert abs(box.width - PLATE_BOX[2]) < 30
    assert len(plate.reading.character_confidences) == len("CA123456")
    assert by_id["jpeg"].plates[0].reading.text == "CA123456"
    expected = {
        "empty": "IMAGE_ERROR_REASON_EMPTY",
        "text": "IMAGE_ERROR_REASON_NOT_AN_IMAGE",
        "truncated": "IMAGE_ERROR_REASON_CORRUPT",
        "bomb": "IMAGE_ERROR_REASON_DIMENSIONS_TOO_LARGE",
        "zero": "IMAGE_ERROR_REASON_ZERO_SIZE",
    }
    for image_id, reason in expected.items():
        error = by_id[image_id].error
        assert recognition_pb2.ImageErrorReason.Name(error.reason) == reason, image_id
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0], image_id
        assert error.message, image_id
    assert reply.model.name == "test-set"
    assert reply.model.execution_provider == "CPUExecutionProvider"


async def test_whole_request_problems_fail_the_call(start_service: StartService, tokens: dict[str, str]) -> None:
    server = await start_service("recognize", max_images_per_request="3", max_message_bytes="200000")
    channel, stub = _stub(server)
    async with channel:
        cases = [
            ([_image(_frame(), str(i)) for i in range(4)], grpc.StatusCode.INVALID_ARGUMENT, "at most 3"),
            ([], grpc.StatusCode.INVALID_ARGUMENT, "at least one image"),
            ([_image(b"x" * 300_000, "big")], grpc.StatusCode.RESOURCE_EXHAUSTED, ""),
        ]
        for images, code, text in cases:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await stub.Recognize(recognize_service_pb2.RecognizeRequest(images=images), metadata=_auth(tokens))
            assert error.value.code() == code
            assert text in (error.value.details() or "")


async def test_overload_is_refused_quickly(start_service: StartService, tokens: dict[str, str]) -> None:
    server = await start_service("recognize", max_queued_images="2", max_images_per_request="8")
    channel, stub = _stub(server)
    async with channel:
        request = recognize_service_pb2.RecognizeRequest(images=[_image(_frame(), str(i)) for i in range(3)])
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.Recognize(request, metadata=_auth(tokens), timeout=5)
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "overloaded" in (error.value.details() or "")
        # Within the limit the same server answers.
        small = recognize_service_pb2.RecognizeRequest(images=[_image(_frame(), "ok")])
        assert (await stub.Recognize(small, metadata=_auth(tokens))).results[0].plates


async def test_stream_answers_in_order(start_service: StartService, tokens: dict[str, str]) -> None:
    server = await start_service("recognize", stream_window="4")
    frames = [_frame((100 + 20 * i, 100 + 10 * i, 256, 64)) for i in range(12)]
    frames[5] = b"garbage"
    channel, stub = _stub(server)

    async def requests() -> AsyncIterator[recognize_service_pb2.StreamRecognizeRequest]:
        for index, data in enumerate(frames):
            # Message 7 names a bogus plate region in its options: its image fails, the stream goes on.
            options = recognition_pb2.RecognitionOptions(format_hints=["nowhere"] if index == 7 else [])
            yield recognize_service_pb2.StreamRecognizeRequest(image=_image(data, f"f{index}"), options=options)

    async with channel:
        replies = [reply async for reply in stub.StreamRecognize(requests(), metadata=_auth(tokens))]
    assert [reply.result.image_id for reply in replies] == [f"f{i}" for i in range(12)]
    assert replies[5].result.HasField("error")
    assert replies[7].result.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    for index, reply in enumerate(replies):
        if index not in (5, 7):
            assert abs(reply.result.plates[0].box.x - (100 + 20 * index)) < 20


async def test_stream_client_waiting_for_each_reply_is_not_stuck(
    start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service("recognize", stream_window="8")
    channel, stub = _stub(server)
    async with channel:
        call = stub.StreamRecognize(None, metadata=_auth(tokens))
        for index in range(3):
            await call.write(recognize_service_pb2.StreamRecognizeRequest(image=_image(_frame(), f"r{index}")))
            reply = await asyncio.wait_for(call.read(), 10)
            assert isinstance(reply, recognize_service_pb2.StreamRecognizeResponse)
            assert reply.result.image_id == f"r{index}"
        await call.done_writing()


async def test_model_info_describes_the_models(start_service: StartService, tokens: dict[str, str]) -> None:
    server = await start_service("recognize")
    channel, stub = _stub(server)
    async with channel:
        info = await stub.GetModelInfo(recognize_service_pb2.GetModelInfoRequest(), metadata=_auth(tokens))
    roles = [component.role for component in info.components]
    assert len(roles) == 2
    assert all(len(component.sha256) == 64 for component in info.components)
    assert info.limits.max_images_per_request == 64
    assert "CPUExecutionProvider" in info.available_execution_providers
    assert any(fmt.country_code == "ZA" for fmt in info.formats)


async def test_hot_reload_keeps_in_flight_requests(
    start_service: StartService, tokens: dict[str, str], test_model_dir: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    shutil.copytree(test_model_dir, models)
    reader = models / "reader.onnx"
    write_manifest(models, detector=models / "detector.onnx", reader=reader, config=reader.with_suffix(".yaml"))
    server = await start_service("recognize", model_dir=str(models))
    channel, stub = _stub(server)
    async with channel:

        async def one(index: int) -> recognize_service_pb2.RecognizeResponse:
            request = recognize_service_pb2.RecognizeRequest(images=[_image(_frame(), str(index))])
            response: recognize_service_pb2.RecognizeResponse = await stub.Recognize(request, metadata=_auth(tokens))
            return response

        unchanged = await stub.ReloadModels(
            recognize_service_pb2.ReloadModelsRequest(), metadata=_auth(tokens, "recognize-admin")
        )
        assert not unchanged.reloaded
        in_flight = [asyncio.ensure_future(one(i)) for i in range(16)]
        # New reader: same contract, different text; the manifest names a new version.
        build_constant_reader(models / "reader.onnx", "GP12AB34")
        manifest = models / "manifest.yaml"
        manifest.write_text(manifest.read_text().replace("version: t1", "version: t2"))
        reloaded = await stub.ReloadModels(
            recognize_service_pb2.ReloadModelsRequest(), metadata=_auth(tokens, "recognize-admin")
        )
        assert reloaded.reloaded
        assert (reloaded.previous_model.version, reloaded.current_model.version) == ("t1", "t2")
        for response in await asyncio.gather(*in_flight):
            text = response.results[0].plates[0].reading.text
            assert (response.model.version, text) in {("t1", "CA123456"), ("t2", "GP12AB34")}
        after = await one(99)
        assert after.model.version == "t2"
        assert after.results[0].plates[0].reading.text == "GP12AB34"
        # A broken model set is refused and the working one stays.
        (models / "reader.onnx").write_bytes(b"not a model")
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.ReloadModels(
                recognize_service_pb2.ReloadModelsRequest(force=True), metadata=_auth(tokens, "recognize-admin")
            )
        assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert (await one(100)).model.version == "t2"


async def test_plate_crops_on_request(start_service: StartService, tokens: dict[str, str]) -> None:
    server = await start_service("recognize")
    channel, stub = _stub(server)
    async with channel:
        request = recognize_service_pb2.RecognizeRequest(
            images=[_image(_frame(), "a")], options=recognition_pb2.RecognitionOptions(include_plate_crops=True)
        )
        reply = await stub.Recognize(request, metadata=_auth(tokens))
    crop = reply.results[0].plates[0].crop
    assert crop.encoding == image_pb2.IMAGE_ENCODING_JPEG
    assert crop.data[:2] == b"\xff\xd8"


async def test_changed_model_files_are_picked_up_by_polling(
    start_service: StartService, tokens: dict[str, str], test_model_dir: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    shutil.copytree(test_model_dir, models)
    reader = models / "reader.onnx"
    write_manifest(models, detector=models / "detector.onnx", reader=reader, config=reader.with_suffix(".yaml"))
    server = await start_service("recognize", model_dir=str(models), model_poll_seconds="0.1")
    channel, stub = _stub(server)
    async with channel:
        build_constant_reader(reader, "ND123456")
        request = recognize_service_pb2.RecognizeRequest(images=[_image(_frame(), "x")])
        for _ in range(100):
            reply = await stub.Recognize(request, metadata=_auth(tokens))
            if reply.results[0].plates[0].reading.text == "ND123456":
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the changed reader was not loaded within 5 s")


async def test_an_image_marked_as_a_plate_crop_is_read_whole_without_detection(
    start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service("recognize")
    # Grey margins around the plate: the detector would box the plate alone, a crop is read as the whole image.
    crop = encode(plate_frame("CA123456", (400, 160), (72, 48, 256, 64)))
    images = [
        recognition_pb2.ImageInput(image_id="crop", image=image_pb2.EncodedImage(data=crop), plate_crop=True),
        _image(crop, "scene"),
    ]
    channel, stub = _stub(server)
    async with channel:
        reply = await stub.Recognize(recognize_service_pb2.RecognizeRequest(images=images), metadata=_auth(tokens))
    whole, scene = reply.results
    (plate,) = whole.plates
    assert (plate.box.x, plate.box.y, plate.box.width, plate.box.height) == (0, 0, 400, 160)
    assert plate.reading.text == "CA123456"
    (found,) = scene.plates
    assert abs(found.box.x - 72) < 10
    assert abs(found.box.width - 256) < 20


async def test_plate_regions_are_checked_per_image_and_hints_per_call(
    start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service("recognize", default_plate_regions="ZA-WC,ZA")
    good = _frame()
    images = [
        recognition_pb2.ImageInput(image_id="za", image=image_pb2.EncodedImage(data=good), plate_regions=["za-wc"]),
        recognition_pb2.ImageInput(image_id="bad", image=image_pb2.EncodedImage(data=good), plate_regions=["Z\n"]),
    ]
    channel, stub = _stub(server)
    async with channel:
        reply = await stub.Recognize(recognize_service_pb2.RecognizeRequest(images=images), metadata=_auth(tokens))
        za, bad = reply.results
        assert za.plates[0].reading.text == "CA123456"
        assert za.plates[0].reading.format.region_code == "ZA-WC"
        assert bad.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert bad.error.reason == recognition_pb2.IMAGE_ERROR_REASON_INVALID_ARGUMENT
        assert not bad.plates
        request = recognize_service_pb2.RecognizeRequest(
            images=[_image(good, "x")], options=recognition_pb2.RecognitionOptions(format_hints=["not a region"])
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Recognize(request, metadata=_auth(tokens))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
