"""Recognize-service throughput and latency through gRPC, beside the in-process pipeline on the same core.

The server runs as its own process pinned to one CPU core (one ONNX Runtime intra-op thread, one inference worker,
one decode worker); the load generator runs on the other cores. Frames are seeded synthetic 1080p JPEGs with one to
three plates. The in-process baseline runs the same pipeline on the same core, one frame per call, as a camera
would. The result is frames/s and p50/p99 latency per concurrency level, and the gRPC/in-process ratio.

    python bench/recognize/service_throughput.py --seconds 10 --concurrency 1 8 64 --out bench/results/recognize.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import grpc
import grpc.aio

from anpr.api.common.v1 import image_pb2
from anpr.api.recognize.v1 import recognition_pb2, recognize_service_pb2, recognize_service_pb2_grpc
from anpr.recognition.models import MODELS_DIR
from anpr.recognition.pipeline import RecognitionPipeline
from anpr.recognition.session import SessionOptions
from anpr.synth.scene import jpeg_scenes


def in_process_fps(models: Path, frames: list[bytes], seconds: float, core: int) -> float:
    """Frames per second of the pipeline called directly, one frame per call, on ``core``."""
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    cv2.setNumThreads(1)
    try:
        pipeline = RecognitionPipeline.load(models, session_options=SessionOptions(intra_op_threads=1))
        for frame in frames[:3]:
            pipeline.recognize([frame])
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            pipeline.recognize([frames[done % len(frames)]])
            done += 1
        return done / (time.perf_counter() - started)
    finally:
        os.sched_setaffinity(0, previous)


async def start_server(models: Path, core: int, workdir: Path) -> tuple[asyncio.subprocess.Process, str, str]:
    """The recognize service pinned to ``core``; returns the process, its address and a service token."""
    token = secrets.token_urlsafe(16)
    tokens = workdir / "tokens.json"
    tokens.write_text(json.dumps({"clients": [{"identity": "bench", "roles": ["ingest-service"], "token": token}]}))
    ready = workdir / "ready.json"
    env = {
        **os.environ,
        "ANPR_RECOGNIZE_GRPC_PORT": "0",
        "ANPR_RECOGNIZE_METRICS_PORT": "0",
        "ANPR_RECOGNIZE_AUTH_TOKENS_FILE": str(tokens),
        "ANPR_RECOGNIZE_READY_FILE": str(ready),
        "ANPR_RECOGNIZE_MODEL_DIR": str(models),
        "ANPR_RECOGNIZE_MODEL_POLL_SECONDS": "0",
        "ANPR_RECOGNIZE_INTRA_OP_THREADS": "1",
        "ANPR_RECOGNIZE_INFERENCE_WORKERS": "1",
        "ANPR_RECOGNIZE_DECODE_WORKERS": "1",
        "ANPR_RECOGNIZE_MAX_QUEUED_IMAGES": "1024",
        "ANPR_RECOGNIZE_LOG_LEVEL": "WARNING",
        "OMP_NUM_THREADS": "1",
    }
    process = await asyncio.create_subprocess_exec(
        "taskset", "-c", str(core), sys.executable, "-m", "anpr.recognize", env=env
    )
    for _ in range(1200):
        if ready.exists():
            return process, json.loads(ready.read_text())["grpc_address"], token
        if process.returncode is not None:
            raise RuntimeError(f"recognize exited with status {process.returncode}")
        await asyncio.sleep(0.05)
    raise RuntimeError("recognize did not become ready")


async def drive(address: str, token: str, frames: list[bytes], concurrency: int, seconds: float) -> dict[str, float]:
    """``concurrency`` callers each sending one-frame Recognize calls back to back for ``seconds``."""
    latencies: list[float] = []
    metadata = (("authorization", f"Bearer {token}"),)
    requests = [
        recognize_service_pb2.RecognizeRequest(
            images=[recognition_pb2.ImageInput(image_id=str(i), image=image_pb2.EncodedImage(data=frame))]
        )
        for i, frame in enumerate(frames)
    ]
    async with grpc.aio.insecure_channel(address) as channel:
        stub = recognize_service_pb2_grpc.RecognizeServiceStub(channel)
        await stub.Recognize(requests[0], metadata=metadata)  # connection and warm-up
        stop_at = time.perf_counter() + seconds

        async def caller(offset: int) -> None:
            index = offset
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                await stub.Recognize(requests[index % len(requests)], metadata=metadata)
                latencies.append(time.perf_counter() - started)
                index += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(caller(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "concurrency": concurrency,
        "frames_per_second": len(latencies) / elapsed,
        "p50_seconds": statistics.median(ordered),
        "p99_seconds": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "calls": len(latencies),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    frames = jpeg_scenes(args.frames, args.seed)
    baseline = in_process_fps(args.models, frames, args.seconds, args.server_core)
    client_cores = (os.sched_getaffinity(0) - {args.server_core}) or {args.server_core}
    os.sched_setaffinity(0, client_cores)
    with tempfile.TemporaryDirectory() as workdir:
        process, address, token = await start_server(args.models, args.server_core, Path(workdir))
        try:
            runs = [await drive(address, token, frames, c, args.seconds) for c in args.concurrency]
        finally:
            process.terminate()
            await process.wait()
    for run in runs:
        run["ratio_to_in_process"] = run["frames_per_second"] / baseline
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "models": str(args.models),
        "frames": len(frames),
        "server_core": args.server_core,
        "in_process_frames_per_second": baseline,
        "grpc": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=MODELS_DIR)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--server-core", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
