"""End to end with real recognition: rendered vehicles with known plates pass a camera -> one event per pass.

The recognize service runs for real (in-process, CPU) with an operator-style model set: the test-built
content-box detector (it finds the one plate on the grey frame) and the real peer OCR reader from ../shared/peers.
The events are read back from what the real hotlist service stored.
"""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import grpc.aio
import numpy as np

from anpr.api.common.v1 import plate_event_pb2
from anpr.api.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from anpr.runtime.server import ServiceServer
from testkit.frames import frame
from testkit.ingest_env import IngestEnvironment, fixed_camera, register, stub
from testkit.plate_models import (
    BACKGROUND,
    build_content_detector,
    encode,
    plate_frame,
    render_plate,
    write_shipped_reader_manifest,
)
from testkit.services import StartService

PLATES = ["CA123456", "BC45DFGP", "ND48213"]
FRAME_SIZE = (1280, 720)
FRAMES_PER_PASS = 8
FPS = 10.0


def drive_by(start: float) -> list[ingest_service_pb2.PushFramesRequest]:
    """Each vehicle crosses the view in FRAMES_PER_PASS frames; the next one enters as the previous one leaves.

    (No empty road between vehicles: the test-built detector reports a box even on an empty frame.)
    """
    requests = []
    n = 0
    for text in PLATES:
        for step in range(FRAMES_PER_PASS):
            box = (120 + 110 * step, 400 - 10 * step, 256 + 8 * step, 64 + 2 * step)  # approaching: grows
            data = encode(plate_frame(text, FRAME_SIZE, box))
            requests.append(ingest_service_pb2.PushFramesRequest(frame=frame("gantry", f"f{n}", data, start + n / FPS)))
            n += 1
    return requests


async def start_gantry_suite(env: IngestEnvironment, start_service: StartService, tmp_path: Path) -> ServiceServer:
    """A real recognize service (content-box detector, shipped reader) and an ingest tracking briskly in front of
    it: three agreeing reads for an early event, a pass over after 3 frames or 0.5 s without its plate."""
    models = write_shipped_reader_manifest(tmp_path, detector=build_content_detector(tmp_path / "d.onnx", 96)).parent
    recognize = await start_service("recognize", model_dir=str(models), model_poll_seconds="0")
    return await env.start_ingest(
        recognize_target=f"dns:///{recognize.address}",
        track_max_missed_frames="3",
        early_min_reads="3",
        track_timeout_seconds="0.5",
    )


async def register_gantry(ingest: ingest_service_pb2_grpc.IngestServiceAsyncStub, env: IngestEnvironment) -> None:
    """The scene camera the frames come from, allowed the test's burst of frames."""
    camera = fixed_camera("gantry")
    camera.limits.max_frames_per_second = 100
    await register(ingest, env, camera)


async def test_vehicles_passing_give_one_event_each_with_the_right_text(
    env: IngestEnvironment, start_service: StartService, tmp_path: Path
) -> None:
    ingest_server = await start_gantry_suite(env, start_service, tmp_path)
    async with grpc.aio.insecure_channel(ingest_server.address) as channel:
        ingest = stub(channel)
        await register_gantry(ingest, env)
        requests = drive_by(time.time() - 10)
        acks = [r.ack async for r in ingest.PushFrames(iter(requests), metadata=env.metadata("camera"))]
        assert len(acks) == len(requests)
        reads = await env.wait_for_finals(PLATES, seconds=30)  # the hotlist service stored each pass's final event

    assert len(reads) == len(PLATES)  # one event per pass
    assert all(r.revision >= 2 for r in reads)  # each pass's early revision came first, replaced by the final one
    assert sorted(r.plate for r in reads) == sorted(PLATES)
    finals = sorted((r.event for r in reads), key=lambda e: e.first_seen_time.ToNanoseconds())
    assert [e.reading.text for e in finals] == PLATES  # in the order the vehicles passed
    for event in finals:
        assert event.stage == plate_event_pb2.PLATE_EVENT_STAGE_FINAL
        assert event.frame_count == FRAMES_PER_PASS
        assert event.travel_direction == plate_event_pb2.TRAVEL_DIRECTION_APPROACHING
        assert 0 < event.reading.confidence <= 1
        assert event.model_version.startswith("test-set")


async def test_a_plate_crop_camera_gives_one_event_per_vehicle_even_from_one_crop(
    env: IngestEnvironment, start_service: StartService, tmp_path: Path
) -> None:
    # A fixed ANPR camera that found the plate itself sends its crop: one for most vehicles, two for one.
    models = write_shipped_reader_manifest(tmp_path, detector=build_content_detector(tmp_path / "d.onnx", 96)).parent
    recognize = await start_service("recognize", model_dir=str(models), model_poll_seconds="0")
    ingest_server = await env.start_ingest(recognize_target=f"dns:///{recognize.address}", track_timeout_seconds="0.5")
    sent = [(PLATES[0], 0.0), (PLATES[1], 2.0), (PLATES[1], 2.2), (PLATES[2], 4.0)]  # (plate, seconds)
    start = time.time() - 10
    requests = [
        ingest_service_pb2.PushFramesRequest(frame=frame("gate", f"c{n}", encode(render_plate(text)), start + at))
        for n, (text, at) in enumerate(sent)
    ]
    async with grpc.aio.insecure_channel(ingest_server.address) as channel:
        ingest = stub(channel)
        camera = fixed_camera("gate")
        camera.sends_plate_crops = True
        await register(ingest, env, camera)
        acks = [r.ack async for r in ingest.PushFrames(iter(requests), metadata=env.metadata("camera"))]
        assert len(acks) == len(sent)
        reads = await env.wait_for_finals(PLATES, seconds=30)

    finals = sorted((r.event for r in reads), key=lambda e: e.first_seen_time.ToNanoseconds())
    assert [(e.reading.text, e.frame_count) for e in finals] == [(PLATES[0], 1), (PLATES[1], 2), (PLATES[2], 1)]


def parked_at_the_edge(text: str, beyond: int) -> bytes:
    """A frame whose plate (256 x 64 px) lies ``beyond`` pixels past the frame's left edge."""
    image = np.full((FRAME_SIZE[1], FRAME_SIZE[0], 3), BACKGROUND, dtype=np.uint8)
    image[400:464, : 256 - beyond] = render_plate(text)[:, beyond:]
    return encode(image)


async def test_a_plate_cut_by_the_frame_edge_gives_a_partial_event_and_no_early_one(
    env: IngestEnvironment, start_service: StartService, tmp_path: Path
) -> None:
    # A car parked with a third of its plate out of view, then a car driving through: the cut plate reads as a
    # confident shorter text, which must not go out as a whole plate (it can equal another vehicle's plate).
    ingest_server = await start_gantry_suite(env, start_service, tmp_path)
    start = time.time() - 10
    parked = [
        ingest_service_pb2.PushFramesRequest(frame=frame("gantry", f"p{n}", parked_at_the_edge(PLATES[1], 90), at))
        for n, at in enumerate(start + n / FPS for n in range(6))
    ]
    passing = [r for r in drive_by(start + 2) if r.frame.frame_id in {f"f{n}" for n in range(FRAMES_PER_PASS)}]
    async with grpc.aio.insecure_channel(ingest_server.address) as channel:
        ingest = stub(channel)
        await register_gantry(ingest, env)
        requests = parked + passing
        acks = [r.ack async for r in ingest.PushFrames(iter(requests), metadata=env.metadata("camera"))]
        assert len(acks) == len(requests)
        reads = await env.wait_for_reads(
            lambda stored: sum(r.event.stage == plate_event_pb2.PLATE_EVENT_STAGE_FINAL for r in stored) >= 2, 30
        )

    (cut,) = [r for r in reads if r.plate != PLATES[0]]
    (whole,) = [r for r in reads if r.plate == PLATES[0]]
    assert cut.event.reading.hidden_characters >= 1  # part of a plate, and says so
    assert cut.revision == 1  # no early event from part of a plate: its only revision is the final one
    assert cut.event.frame_count == 6
    assert whole.event.reading.hidden_characters == 0
    assert whole.revision >= 2  # the whole plate's early event came first
