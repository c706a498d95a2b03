"""One frame followed ingest -> recognize -> hotlist: the three services run as processes with OTLP export on, to a
real OTLP receiver in this test. The spans of the frame that made a plate event share its trace id in all three
services, each with the parent it should have, and no span attribute or status carries the plate text.

ingest batches one frame per Recognize call here so that the frame that made the event is also the first (the
parent) of its recognition batch; how a batch parents on its first frame and links the others is tested in
tests/runtime/test_tracing.py.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import grpc.aio
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from anpr.api.common.v1 import image_pb2
from anpr.api.ingest.v1 import frame_pb2, ingest_service_pb2, ingest_service_pb2_grpc
from testkit.faults.load import LoadShape, plan
from testkit.faults.postgres import PrivatePostgres
from testkit.faults.processes import TOKEN, Cluster
from testkit.ingest_env import bearer, fixed_camera
from testkit.otlp import ReceivedSpan, otlp_receiver
from testkit.polling import wait_until_async
from testkit.scenes import scene_model_dir

CAMERA = "trace-cam"
RECOGNIZE = "anpr.recognize.v1.RecognizeService/Recognize"
SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind
METADATA = bearer(TOKEN)

pytestmark = pytest.mark.timeout(240)


async def _stored_reads(database_url: str) -> bool:
    connection = await asyncpg.connect(database_url)
    try:
        return bool(await connection.fetchval("SELECT count(*) FROM hotlist.reads WHERE camera_id = $1", CAMERA))
    except asyncpg.UndefinedTableError:
        return False
    finally:
        await connection.close()


def _named(chain: list[ReceivedSpan]) -> list[tuple[str, str]]:
    # The client spans come from opentelemetry-instrumentation-grpc, which names them with a leading slash.
    return [(s.service, s.name.lstrip("/")) for s in chain]


def _chain(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[ReceivedSpan]:
    """The span and its ancestors, nearest first."""
    chain = [span]
    while chain[-1].parent_span_id:
        chain.append(by_id[chain[-1].parent_span_id])
    return chain


async def test_one_frame_is_one_trace_across_ingest_recognize_and_hotlist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Export batches within a tenth of a second; the services also flush everything when they stop.
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    vehicle = plan([CAMERA], LoadShape(cameras=1, frames_per_pass=5, gap_frames=3, seconds=1.0)).passes[0]
    with otlp_receiver() as receiver:
        postgres = PrivatePostgres()
        await asyncio.to_thread(postgres.create)
        try:
            await postgres.start_async()
            cluster = Cluster.create(tmp_path, postgres.url, scene_model_dir(tmp_path / "models"))
            for service in cluster.services:
                service.settings.update(otlp_endpoint=receiver.endpoint, trace_sample_ratio="1")
            cluster.ingest.settings["recognize_batch_size"] = "1"
            try:
                await cluster.start()
                async with grpc.aio.insecure_channel(cluster.ingest.address) as channel:
                    ingest = ingest_service_pb2_grpc.IngestServiceStub(channel)
                    await ingest.RegisterCamera(
                        ingest_service_pb2.RegisterCameraRequest(camera=fixed_camera(CAMERA)), metadata=METADATA
                    )
                    start = time.time()
                    for number, record in enumerate(vehicle.frames):
                        captured = Timestamp()
                        captured.FromNanoseconds(round((start + number * 0.5) * 1e9))
                        frame = frame_pb2.Frame(
                            camera_id=CAMERA,
                            frame_id=record.frame_id,
                            capture_time=captured,
                            image=image_pb2.EncodedImage(data=record.image),
                        )
                        reply = await ingest.SubmitFrame(
                            ingest_service_pb2.SubmitFrameRequest(frame=frame), metadata=METADATA
                        )
                        assert reply.ack.status == frame_pb2.FRAME_STATUS_ACCEPTED, reply.ack
                await wait_until_async(lambda: _stored_reads(postgres.url), seconds=60)
            finally:
                await cluster.stop()  # SIGTERM: each service flushes its spans before it exits
        finally:
            await asyncio.to_thread(postgres.destroy)
        spans = receiver.spans

    by_id = {span.span_id: span for span in spans}
    reports = [s for s in spans if s.name == "anpr.hotlist.v1.HotlistService/ReportReads" and s.kind == SERVER]
    assert reports, sorted({s.name for s in spans})
    delivered = _chain(reports[0], by_id)
    assert _named(delivered[1:]) == [
        ("anpr-ingest", "anpr.hotlist.v1.HotlistService/ReportReads"),
        ("anpr-ingest", "ingest.deliver_events"),
        ("anpr-ingest", "ingest.emit_events"),
        ("anpr-ingest", "ingest.frame"),
    ]
    assert delivered[0].service == "anpr-hotlist"
    assert delivered[1].kind == CLIENT
    frame_span = delivered[-1]
    assert frame_span.attributes["anpr.camera_id"] == CAMERA
    assert frame_span.attributes["anpr.frame_id"] in {r.frame_id for r in vehicle.frames}
    assert {s.trace_id for s in delivered} == {frame_span.trace_id}

    # The same frame's recognition, in recognize, under the same trace.
    recognized = [
        _chain(s, by_id)
        for s in spans
        if s.trace_id == frame_span.trace_id and s.kind == SERVER and s.name == RECOGNIZE
    ]
    assert len(recognized) == 1
    assert _named(recognized[0]) == [
        ("anpr-recognize", "anpr.recognize.v1.RecognizeService/Recognize"),
        ("anpr-ingest", "anpr.recognize.v1.RecognizeService/Recognize"),
        ("anpr-ingest", "ingest.recognition_batch"),
        ("anpr-ingest", "ingest.frame"),
    ]
    assert recognized[0][-1].span_id == frame_span.span_id
    assert any(s.name == "ingest.queue_wait" and s.parent_span_id == frame_span.span_id for s in spans)

    # Plate text is personal information: it is in no span.
    for span in spans:
        assert vehicle.plate not in f"{span.name} {span.attributes} {span.status_message}"
