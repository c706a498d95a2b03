"""Issue 19, denial of service: one caller's bad input fails alone, never other callers' images or streams."""

from __future__ import annotations

import asyncio

import cv2
import grpc
import grpc.aio
import numpy as np

from anpr.api.common.v1 import image_pb2
from anpr.api.recognize.v1 import recognition_pb2, recognize_service_pb2, recognize_service_pb2_grpc
from testkit.plate_models import encode, plate_frame
from testkit.services import StartService

INVALID = grpc.StatusCode.INVALID_ARGUMENT.value[0]


def _image(data: bytes, image_id: str) -> recognition_pb2.ImageInput:
    return recognition_pb2.ImageInput(image_id=image_id, image=image_pb2.EncodedImage(data=data))


def _sliver(width: int = 4000, height: int = 1) -> bytes:
    ok, data = cv2.imencode(".png", np.full((height, width, 3), 200, dtype=np.uint8))
    assert ok
    return data.tobytes()


def _auth(tokens: dict[str, str]) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {tokens['ingest-service']}"),)


async def test_a_4000x1_image_fails_alone_and_40_concurrent_callers_succeed(
    start_service: StartService, tokens: dict[str, str]
) -> None:
    # Before: letterboxing 4000x1 to the detector's input rounds its height to 0 px, an OpenCV assertion failed the
    # whole detector batch, and 6-16 of 40 other callers got INTERNAL.
    server = await start_service("recognize", detect_batch_size="16", max_batch_wait_seconds="0.02")
    good = encode(plate_frame("CA123456", (1280, 720), (400, 300, 256, 64)))
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = recognize_service_pb2_grpc.RecognizeServiceStub(channel)

        async def call(data: bytes, image_id: str) -> recognition_pb2.ImageResult:
            request = recognize_service_pb2.RecognizeRequest(images=[_image(data, image_id)])
            reply = await stub.Recognize(request, metadata=_auth(tokens), timeout=30)
            return reply.results[0]

        calls = [call(good, f"good{i}") for i in range(40)]
        calls += [call(_sliver(), f"bad{i}") for i in range(10)]
        calls += [call(_sliver(1, 4000), f"tall{i}") for i in range(2)]
        results = await asyncio.gather(*calls)
        # One request with good and bad images: only the bad one fails.
        mixed = await stub.Recognize(
            recognize_service_pb2.RecognizeRequest(images=[_image(good, "a"), _image(_sliver(), "b")]),
            metadata=_auth(tokens),
        )
    for result in results:
        if result.image_id.startswith("good"):
            assert not result.HasField("error"), result.error
            assert result.plates[0].reading.text == "CA123456"
        else:
            assert result.error.code == INVALID
            assert result.error.reason == recognition_pb2.IMAGE_ERROR_REASON_INVALID_ARGUMENT
            assert "at least" in result.error.message
    assert mixed.results[0].plates
    assert not mixed.results[0].HasField("error")
    assert mixed.results[1].error.code == INVALID


async def test_a_corrupt_stream_message_ends_the_stream_with_invalid_argument(
    start_service: StartService, tokens: dict[str, str]
) -> None:
    # Before: the servicer's reader task died on the undecodable message and the reply loop waited forever
    # (20 of 20 streams still open after 30 s).
    server = await start_service("recognize")
    good = recognize_service_pb2.StreamRecognizeRequest(
        image=_image(encode(plate_frame("CA123456", (1280, 720), (400, 300, 256, 64))), "ok")
    ).SerializeToString()
    async with grpc.aio.insecure_channel(server.address) as channel:
        method = channel.stream_stream(
            "/anpr.recognize.v1.RecognizeService/StreamRecognize",
            request_serializer=lambda raw: raw,
            response_deserializer=recognize_service_pb2.StreamRecognizeResponse.FromString,
        )

        async def corrupt_stream() -> tuple[grpc.StatusCode, int]:
            call = method(iter([good, b"\xff\xff\xff\xff", good]), metadata=_auth(tokens), timeout=20)
            replies = 0
            try:
                async for _ in call:
                    replies += 1
            except grpc.aio.AioRpcError as error:
                return error.code(), replies
            return grpc.StatusCode.OK, replies

        outcomes = await asyncio.wait_for(asyncio.gather(*(corrupt_stream() for _ in range(20))), 15)
        # A good stream beside them is unaffected.
        stub = recognize_service_pb2_grpc.RecognizeServiceStub(channel)
        requests = [recognize_service_pb2.StreamRecognizeRequest.FromString(good)] * 3
        replies = [reply async for reply in stub.StreamRecognize(iter(requests), metadata=_auth(tokens))]
    assert {code for code, _ in outcomes} == {grpc.StatusCode.INVALID_ARGUMENT}
    assert all(count <= 1 for _, count in outcomes)
    assert [reply.result.plates[0].reading.text for reply in replies] == ["CA123456"] * 3
