"""Ingest end to end: sustained frames/s at N simulated cameras x F fps, and capture-to-event latency.

Processes: the recognize service and the ingest service each run as their own process (``python -m anpr.<svc>``,
real models on CPU); this process plays N cameras (one PushFrames stream each, paced to F fps, vehicles with
plates crossing the view) and a stand-in hotlist service that timestamps every plate event on arrival.

Reported: offered and accepted frames/s, frames throttled (ingest pushing back because recognition is behind),
recognised frames/s (from ingest's metrics), and capture-to-event latency p50/p99 for the first (EARLY) event of a
pass (what an alert waits for) and for FINAL events (which by design wait for the pass to end: track timeout).

    python bench/ingest/ingest_throughput.py --cameras 50 --fps 10 --seconds 30 --out bench/results/ingest.json

Models: ``--models DIR`` (a manifest directory); else the project's shipped models when present; else the
test-built content-box detector with the peer OCR reader from ../shared/peers (how the tests run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import cv2
import grpc
import grpc.aio
import numpy as np
from google.protobuf import timestamp_pb2

from anpr.api.common.v1 import geometry_pb2, image_pb2, plate_event_pb2, plate_pb2
from anpr.api.hotlist.v1 import hotlist_service_pb2, hotlist_service_pb2_grpc, read_pb2
from anpr.api.ingest.v1 import camera_pb2, frame_pb2, ingest_service_pb2, ingest_service_pb2_grpc
from anpr.api.recognize.v1 import recognition_pb2, recognize_service_pb2, recognize_service_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
BACKGROUND = 114
FRAME_SIZE = (1280, 720)
FRAMES_PER_PASS = 12
PLATE_TEXTS = ["CA123456", "BC45DFGP", "ND48213", "GP77ABC", "WP90312", "CF12345"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def render_frames() -> list[list[bytes]]:
    """One list of JPEG frames per plate text: the plate crossing the view, approaching (growing)."""
    passes = []
    for text in PLATE_TEXTS:
        frames = []
        for step in range(FRAMES_PER_PASS):
            image = np.full((FRAME_SIZE[1], FRAME_SIZE[0], 3), BACKGROUND, dtype=np.uint8)
            x, y, w, h = plate_box(step)
            plate = np.full((h, w, 3), 255, dtype=np.uint8)
            cv2.rectangle(plate, (2, 2), (w - 3, h - 3), (0, 0, 0), 2)
            scale = h / 64
            cv2.putText(plate, text, (int(10 * scale), int(48 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 1.5 * scale,
                        (0, 0, 0), max(2, int(4 * scale)), cv2.LINE_AA)  # fmt: skip
            image[y : y + h, x : x + w] = plate
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
            assert ok
            frames.append(bytes(data.tobytes()))
        passes.append(frames)
    return passes


def model_dir(given: Path | None, workdir: Path) -> Path:
    """The models to serve (see the module docstring)."""
    if given is not None:
        return given
    shipped = ROOT / "services" / "recognize" / "anpr" / "recognize" / "models"
    if (shipped / "manifest.yaml").is_file():
        return shipped
    sys.path.insert(0, str(ROOT / "tests"))
    from testkit.plate_models import PEER_CONFIG, PEER_MODEL, build_content_detector, write_manifest

    if not PEER_MODEL.is_file():
        raise SystemExit("no models: pass --models DIR (no shipped models, no peer reader in ../shared/peers)")
    detector = build_content_detector(workdir / "detector.onnx", 96)
    return write_manifest(workdir, detector=detector, reader=PEER_MODEL, config=PEER_CONFIG).parent


@dataclass
class Arrivals:
    """What the stand-in hotlist saw: per stage, capture-to-arrival latencies in seconds."""

    latencies: dict[int, list[float]] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)


class TimingHotlist(hotlist_service_pb2_grpc.HotlistServiceServicer):
    """Records arrival time minus the newest capture time of each event."""

    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals

    async def ReportReads(
        self, request: hotlist_service_pb2.ReportReadsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> hotlist_service_pb2.ReportReadsResponse:
        now = time.time()
        for event in request.events:
            latency = now - event.last_seen_time.ToNanoseconds() / 1e9
            self.arrivals.latencies.setdefault(event.stage, []).append(latency)
            self.arrivals.texts[event.event_id] = event.reading.text
        return hotlist_service_pb2.ReportReadsResponse(
            results=[read_pb2.ReadResult(event_id=e.event_id, revision=e.revision) for e in request.events]
        )


def plate_box(step: int) -> tuple[int, int, int, int]:
    """Where :func:`render_frames` puts the plate in frame ``step`` of a pass."""
    return 80 + 70 * step, 420 - 8 * step, 256 + 6 * step, 64 + 2 * step


class AnswerKeyRecognizer(recognize_service_pb2_grpc.RecognizeServiceServicer):
    """``--recognizer answer-key``: answers from the frame id without decoding, to measure ingest on its own."""

    async def Recognize(
        self, request: recognize_service_pb2.RecognizeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> recognize_service_pb2.RecognizeResponse:
        results = []
        for image in request.images:
            camera_id, _, number = image.image_id.rpartition("-")
            index = int(number)
            offset = int(camera_id.rpartition("-")[2])
            text = PLATE_TEXTS[(index // FRAMES_PER_PASS + offset) % len(PLATE_TEXTS)]
            x, y, w, h = plate_box(index % FRAMES_PER_PASS)
            reading = plate_pb2.PlateReading(text=text, confidence=0.95, character_confidences=[0.95] * len(text))
            box = geometry_pb2.BoundingBox(x=x, y=y, width=w, height=h)
            plate = recognition_pb2.PlateDetection(box=box, detection_confidence=0.9, reading=reading)
            results.append(recognition_pb2.ImageResult(image_id=image.image_id, plates=[plate]))
        model = recognition_pb2.ModelVersion(name="answer-key", version="1")
        return recognize_service_pb2.RecognizeResponse(results=results, model=model)


@dataclass
class CameraStats:
    """Acknowledgements one simulated camera received."""

    sent: int = 0
    dropped: int = 0  # frames the camera dropped because its send queue was full (ingest pushing back)
    accepted: int = 0
    throttled: int = 0
    other: int = 0


async def camera(
    stub: ingest_service_pb2_grpc.IngestServiceAsyncStub,
    camera_id: str,
    fps: float,
    until: float,
    passes: list[list[bytes]],
    token: str,
    stats: CameraStats,
    offset: int,
) -> None:
    """One camera: a PushFrames stream paced to ``fps`` until ``until`` (loop time)."""
    loop = asyncio.get_running_loop()
    # A camera holds about one second of frames for sending and drops the newest beyond that, as real cameras do.
    queue: asyncio.Queue[ingest_service_pb2.PushFramesRequest | None] = asyncio.Queue(maxsize=max(1, int(fps)))

    async def requests() -> Any:
        while (item := await queue.get()) is not None:
            yield item

    call = stub.PushFrames(requests(), metadata=(("authorization", f"Bearer {token}"),))

    async def read_acks() -> None:
        async for reply in call:
            status = reply.ack.status
            if status == frame_pb2.FRAME_STATUS_ACCEPTED:
                stats.accepted += 1
            elif status == frame_pb2.FRAME_STATUS_THROTTLED:
                stats.throttled += 1
            else:
                stats.other += 1

    reader = asyncio.create_task(read_acks())
    start = loop.time() + (offset % 10) / (10 * fps)  # spread cameras over the frame interval
    index = 0
    while loop.time() < until:
        due = start + index / fps
        if (wait := due - loop.time()) > 0:
            await asyncio.sleep(wait)
        frames = passes[(index // FRAMES_PER_PASS + offset) % len(passes)]
        stamp = timestamp_pb2.Timestamp()
        stamp.FromNanoseconds(time.time_ns())
        frame = frame_pb2.Frame(
            camera_id=camera_id,
            frame_id=f"{camera_id}-{index}",
            capture_time=stamp,
            image=image_pb2.EncodedImage(data=frames[index % FRAMES_PER_PASS], encoding=image_pb2.IMAGE_ENCODING_JPEG),
        )
        index += 1
        try:
            queue.put_nowait(ingest_service_pb2.PushFramesRequest(frame=frame))
        except asyncio.QueueFull:
            stats.dropped += 1
            continue
        stats.sent += 1
    await queue.put(None)
    await reader


def start_process(module: str, env: dict[str, str], ready: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start ``python -m module`` and wait for its ready file."""
    process = subprocess.Popen(
        [sys.executable, "-m", module], env={**os.environ, **env}, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 120
    while not ready.is_file():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{module} did not start; see {log}:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)
    return process


def scrape(url: str) -> dict[str, float]:
    """Unlabelled and labelled samples of a Prometheus endpoint, by full series name."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()  # noqa: S310  (our own loopback endpoint)
    samples = {}
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) ([0-9.eE+-]+|NaN)$", line)
        if match:
            samples[match.group(1)] = float(match.group(2))
    return samples


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def register_cameras(address: str, token: str, count: int, fps: float) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
        for index in range(count):
            cam = camera_pb2.Camera(camera_id=f"bench-{index:03d}", kind=camera_pb2.CAMERA_KIND_FIXED)
            cam.location.latitude, cam.location.longitude = -33.9, 18.4
            cam.limits.max_frames_per_second = fps * 2
            cam.labels["principal"] = "bench-camera"  # camera tokens submit only for cameras bound to them
            await stub.RegisterCamera(
                ingest_service_pb2.RegisterCameraRequest(camera=cam), metadata=(("authorization", f"Bearer {token}"),)
            )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    tokens = {
        "ingest-service": "bench-service-token",
        "camera": "bench-camera-token",
        "ingest-admin": "bench-admin-token",
    }
    tokens_file = workdir / "tokens.json"
    clients = [{"identity": f"bench-{role}", "roles": [role], "token": token} for role, token in tokens.items()]
    tokens_file.write_text(json.dumps({"clients": clients}))
    (workdir / "service-token").write_text(tokens["ingest-service"])
    database = f"ingest_bench_{os.getpid()}"
    admin = await asyncpg.connect(args.database_url)
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    database_url = args.database_url.rsplit("/", 1)[0] + f"/{database}"

    arrivals = Arrivals()
    hotlist = grpc.aio.server()
    hotlist_service_pb2_grpc.add_HotlistServiceServicer_to_server(TimingHotlist(arrivals), hotlist)  # type: ignore[abstract]
    hotlist_port = hotlist.add_insecure_port("127.0.0.1:0")
    await hotlist.start()

    recognize_port, ingest_port = free_port(), free_port()
    answer_key: grpc.aio.Server | None = None
    if args.recognizer == "answer-key":
        models = Path("answer-key")
        answer_key = grpc.aio.server()
        recognize_service_pb2_grpc.add_RecognizeServiceServicer_to_server(AnswerKeyRecognizer(), answer_key)  # type: ignore[abstract]
        recognize_port = answer_key.add_insecure_port("127.0.0.1:0")
        await answer_key.start()
    else:
        models = model_dir(args.models, workdir)
    common = {"METRICS_PORT": "0", "AUTH_TOKENS_FILE": str(tokens_file), "LOG_FORMAT": "text"}
    recognize_env = {f"ANPR_RECOGNIZE_{k}": v for k, v in common.items()} | {
        "ANPR_RECOGNIZE_GRPC_PORT": str(recognize_port),
        "ANPR_RECOGNIZE_MODEL_DIR": str(models),
        "ANPR_RECOGNIZE_MODEL_POLL_SECONDS": "0",
        "ANPR_RECOGNIZE_READY_FILE": str(workdir / "recognize.ready"),
    }
    ingest_env = {f"ANPR_INGEST_{k}": v for k, v in common.items()} | {
        "ANPR_INGEST_GRPC_PORT": str(ingest_port),
        "ANPR_INGEST_DATABASE_URL": database_url,
        "ANPR_INGEST_RECOGNIZE_TARGET": f"dns:///127.0.0.1:{recognize_port}",
        "ANPR_INGEST_HOTLIST_TARGET": f"dns:///127.0.0.1:{hotlist_port}",
        "ANPR_INGEST_SERVICE_TOKEN_FILE": str(workdir / "service-token"),
        "ANPR_INGEST_SPOOL_PATH": str(workdir / "spool.sqlite3"),
        "ANPR_INGEST_READY_FILE": str(workdir / "ingest.ready"),
        "ANPR_INGEST_TRACK_TIMEOUT_SECONDS": "1.0",
        "ANPR_INGEST_RECOGNIZE_BATCH_SIZE": str(args.batch),
        "ANPR_INGEST_RECOGNIZE_CONCURRENCY": str(args.concurrency),
    }
    processes = []
    if answer_key is None:
        ready = workdir / "recognize.ready"
        processes.append(start_process("anpr.recognize", recognize_env, ready, workdir / "recognize.log"))
    processes.append(start_process("anpr.ingest", ingest_env, workdir / "ingest.ready", workdir / "ingest.log"))
    ingest_metrics = json.loads((workdir / "ingest.ready").read_text())["metrics_url"]
    try:
        address = f"127.0.0.1:{ingest_port}"
        await register_cameras(address, tokens["ingest-admin"], args.cameras, args.fps)
        passes = await asyncio.to_thread(render_frames)
        loop = asyncio.get_running_loop()
        stats = [CameraStats() for _ in range(args.cameras)]
        before = scrape(ingest_metrics)
        started = loop.time()
        async with grpc.aio.insecure_channel(address) as channel:
            stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
            until = started + args.seconds
            await asyncio.gather(
                *(
                    camera(stub, f"bench-{i:03d}", args.fps, until, passes, tokens["camera"], stats[i], i)
                    for i in range(args.cameras)
                )
            )
        elapsed = loop.time() - started
        await asyncio.sleep(3.0)  # let the last passes end and be delivered
        after = scrape(ingest_metrics)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        await hotlist.stop(0)
        if answer_key is not None:
            await answer_key.stop(0)
        admin = await asyncpg.connect(args.database_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    unrecognised = sum(v for k, v in after.items() if k.startswith("anpr_ingest_frames_unrecognised_total"))
    recognised = delta("anpr_ingest_frames_accepted_total") - unrecognised
    early = arrivals.latencies.get(plate_event_pb2.PLATE_EVENT_STAGE_EARLY, [])
    final = arrivals.latencies.get(plate_event_pb2.PLATE_EVENT_STAGE_FINAL, [])
    expected = set(PLATE_TEXTS)
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "processor": platform.processor()},
        "recognizer": args.recognizer,
        "models": str(models),
        "cameras": args.cameras,
        "fps_per_camera": args.fps,
        "seconds": round(elapsed, 1),
        "camera_frames_per_second": round(sum(s.sent + s.dropped for s in stats) / elapsed, 1),
        "dropped_at_camera": sum(s.dropped for s in stats),
        "sent_frames_per_second": round(sum(s.sent for s in stats) / elapsed, 1),
        "accepted_frames_per_second": round(sum(s.accepted for s in stats) / elapsed, 1),
        "throttled_frames": sum(s.throttled for s in stats),
        "other_refusals": sum(s.other for s in stats),
        "recognised_frames_per_second": round(recognised / elapsed, 1),
        "recognition_failures": unrecognised,
        "events": {"early": len(early), "final": len(final)},
        "events_with_expected_text": sum(1 for t in arrivals.texts.values() if t in expected),
        "distinct_passes": len(arrivals.texts),
        "early_latency_seconds": {"p50": percentile(early, 0.5), "p99": percentile(early, 0.99)},
        "final_latency_seconds": {"p50": percentile(final, 0.5), "p99": percentile(final, 0.99)},
        "mean_recognize_batch": (
            round(
                delta("anpr_ingest_recognition_batch_frames_sum") / delta("anpr_ingest_recognition_batch_frames_count"),
                1,
            )
            if delta("anpr_ingest_recognition_batch_frames_count")
            else None
        ),
        "median_early_latency_ms": round(statistics.median(early) * 1000) if early else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=50)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--batch", type=int, default=16, help="ingest's recognize_batch_size")
    parser.add_argument("--concurrency", type=int, default=4, help="ingest's recognize_concurrency")
    parser.add_argument("--models", type=Path, default=None)
    parser.add_argument(
        "--recognizer",
        choices=("service", "answer-key"),
        default="service",
        help="service: the real recognize service on CPU; answer-key: no recognition cost (ingest alone)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("ANPR_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL server where a throw-away database may be created",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
