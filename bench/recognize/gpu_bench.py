"""Recognize-service frames per second and latency per execution provider (TensorRT, CUDA, CPU) through gRPC.

For each provider (and precision where the provider has a choice) the recognize service starts as its own process
with that provider forced, so a silent fall-back to the CPU cannot pass for a GPU figure: the provider the service
reports (``GetModelInfo``) must be the one asked for, or the run is marked ``fell_back`` and its numbers are not
the provider's. Client processes then send seeded synthetic 1920x1080 JPEG scenes (1-3 plates, rendered and
encoded once by ``anpr.synth``) with ``--concurrency`` calls in flight, ``--images-per-call`` frames per
``Recognize`` call (ingest batches the same way); the service decodes every JPEG itself. Reported per run: frames/s,
call latency p50/p95/p99, the service's own per-stage times (from its ``anpr_recognize_stage_seconds``; they
include waiting for a thread or a batch), its CPU use, GPU utilisation and memory (when ``nvidia-smi`` is there),
and the time to become ready (the TensorRT engine build on a cold cache). Before the runs, the CPU JPEG decode
capacity of the service's CPUs is measured in-process (the same decode call the service makes), so a run that
stops at that ceiling shows decode as the bound.

On a GPU machine (one H100, issue 21 target >= 3,000 frames/s; the two TensorRT runs build engines on first start,
minutes, then reuse ``--trt-cache``):

    python bench/recognize/gpu_bench.py --provider tensorrt cuda --precision fp16 fp32 \\
        --seconds 30 --concurrency 32 128 512 --images-per-call 8 --client-processes 4 --server-cpus 0-11 \\
        --out bench/results/recognize_gpu_$(date +%F).json

Smoke check on a CPU-only machine (proves the script works; not a throughput figure):

    python bench/recognize/gpu_bench.py --provider cpu --seconds 3 --concurrency 4 --frames 8 --client-processes 1
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import onnxruntime as ort
from prometheus_client.parser import text_string_to_metric_families

from anpr.api.common.v1 import image_pb2
from anpr.api.recognize.v1 import recognition_pb2, recognize_service_pb2, recognize_service_pb2_grpc
from anpr.recognition.models import MODELS_DIR
from anpr.recognition.pipeline import RecognitionPipeline
from anpr.recognition.session import SessionOptions
from anpr.synth.scene import jpeg_scenes

# What each --provider asks the service for. TensorRT keeps CUDA behind it for any operator TensorRT cannot run
# (ONNX Runtime's recommended order); the service appends the CPU provider as the last resort itself.
PROVIDERS = {
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider"),
    "cuda": ("CUDAExecutionProvider",),
    "cpu": ("CPUExecutionProvider",),
}
# Only TensorRT turns fp16 on by itself (trt_fp16_enable); CUDA and CPU run the fp32 graphs as shipped.
PRECISIONS = {"tensorrt": ("fp16", "fp32"), "cuda": ("fp32",), "cpu": ("fp32",)}
STAGES = ("decode", "detect", "refine", "read")


@dataclass(frozen=True)
class Run:
    """One service configuration to measure."""

    provider: str
    precision: str

    @property
    def name(self) -> str:
        return f"{self.provider}-{self.precision}"


def parse_cpus(text: str | None) -> set[int] | None:
    """A taskset-style list (``0-11,14``) as a set of CPU numbers."""
    if not text:
        return None
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


# Machine ------------------------------------------------------------------------------------------------------


def gpu_visible() -> bool:
    return shutil.which("nvidia-smi") is not None and (
        os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia/version")
    )


def device() -> dict[str, Any]:
    """What the figures were measured on: GPUs (nvidia-smi), CPU model and count, onnxruntime build."""
    cpu_model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpus: list[str] = []
    if gpu_visible():
        query = ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"]
        gpus = [line.strip() for line in subprocess.run(query, capture_output=True, text=True).stdout.splitlines()]
    return {
        "host": platform.node(),
        "gpus": gpus,
        "cpu": cpu_model,
        "cpus": os.cpu_count(),
        "onnxruntime": ort.__version__,
        "onnxruntime_providers": ort.get_available_providers(),
        "python": platform.python_version(),
    }


def unavailable(run: Run) -> str | None:
    """Why ``run`` cannot be measured here, or None."""
    missing = [name for name in PROVIDERS[run.provider] if name not in ort.get_available_providers()]
    if missing:
        return f"onnxruntime here lacks {', '.join(missing)} (install the recognize-gpu extra)"
    if run.provider != "cpu" and not gpu_visible():
        # The GPU wheel lists its providers on any host; without a device the session would fall back to the CPU.
        return "no NVIDIA GPU visible (nvidia-smi, /dev/nvidiactl)"
    return None


class GpuSampler:
    """``nvidia-smi`` sampling GPU utilisation and memory every 200 ms while a run lasts."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        if gpu_visible():
            query = "--query-gpu=utilization.gpu,memory.used"
            self._process = subprocess.Popen(
                ["nvidia-smi", query, "--format=csv,noheader,nounits", "-lms", "200"],
                stdout=subprocess.PIPE,
                text=True,
            )

    def stop(self) -> dict[str, float] | None:
        if self._process is None:
            return None
        self._process.terminate()
        out, _ = self._process.communicate()
        samples = [[float(v) for v in line.split(",")[:2]] for line in out.splitlines() if line.count(",") >= 1]
        if not samples:
            return None
        utilisation = [s[0] for s in samples]
        return {
            "utilisation_mean": sum(utilisation) / len(utilisation),
            "utilisation_max": max(utilisation),
            "memory_used_mib_max": max(s[1] for s in samples),
            "samples": len(samples),
        }


# Decode capacity ----------------------------------------------------------------------------------------------


def decode_capacity(models: Path, frames: list[bytes], threads: int, seconds: float) -> dict[str, float]:
    """Frames/s the service's own decode call reaches on ``threads`` threads of this process's CPUs."""
    pipeline = RecognitionPipeline.load(
        models, session_options=SessionOptions(providers=("CPUExecutionProvider",), intra_op_threads=1)
    )
    for frame in frames[:4]:
        pipeline.decode(frame)
    single, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds / 2 or single < 8:
        pipeline.decode(frames[single % len(frames)])
        single += 1
    single_seconds = (time.perf_counter() - started) / single

    def worker(offset: int) -> int:
        done, stop_at = 0, time.perf_counter() + seconds / 2
        while time.perf_counter() < stop_at:
            pipeline.decode(frames[(offset + done) % len(frames)])
            done += 1
        return done

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(worker, range(threads)))
    return {
        "decode_ms_per_frame_one_thread": 1000 * single_seconds,
        "decode_threads": threads,
        "decode_frames_per_second": total / (time.perf_counter() - started),
    }


# Service ------------------------------------------------------------------------------------------------------


def service_environment(run: Run, args: argparse.Namespace, workdir: Path, token: str) -> dict[str, str]:
    tokens = workdir / "tokens.json"
    digest = hashlib.sha256(token.encode()).hexdigest()
    client = {"identity": "bench", "roles": ["ingest-service"], "token_sha256": digest}
    tokens.write_text(json.dumps({"clients": [client]}))
    # Recognize settings of the caller's shell would blur which run measured what: each run sets its own.
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("ANPR_RECOGNIZE_")}
    env = {
        **inherited,
        "ANPR_RECOGNIZE_GRPC_PORT": "0",
        "ANPR_RECOGNIZE_METRICS_PORT": "0",
        "ANPR_RECOGNIZE_AUTH_TOKENS_FILE": str(tokens),
        "ANPR_RECOGNIZE_READY_FILE": str(workdir / "ready.json"),
        "ANPR_RECOGNIZE_MODEL_DIR": str(args.models),
        "ANPR_RECOGNIZE_MODEL_POLL_SECONDS": "0",
        "ANPR_RECOGNIZE_PROVIDERS": json.dumps(list(PROVIDERS[run.provider])),
        "ANPR_RECOGNIZE_FP16": "true" if run.precision == "fp16" else "false",
        "ANPR_RECOGNIZE_MAX_QUEUED_IMAGES": str(max(1024, 2 * args.images_per_call * max(args.concurrency))),
        "ANPR_RECOGNIZE_MAX_IMAGES_PER_REQUEST": str(max(64, args.images_per_call)),
        "ANPR_RECOGNIZE_LOG_LEVEL": "WARNING",
    }
    if run.provider == "tensorrt":
        # One cache per precision: an fp16 and an fp32 engine of the same model must not overwrite each other.
        cache = args.trt_cache / run.precision
        cache.mkdir(parents=True, exist_ok=True)
        env["ANPR_RECOGNIZE_TENSORRT_CACHE_DIR"] = str(cache)
    for setting in ("intra_op_threads", "inference_workers", "decode_workers", "detect_batch_size", "read_batch_size"):
        value = getattr(args, setting)
        if value is not None:
            env[f"ANPR_RECOGNIZE_{setting.upper()}"] = str(value)
    return env


async def start_service(
    env: dict[str, str], server_cpus: set[int] | None, workdir: Path, start_timeout: float
) -> tuple[asyncio.subprocess.Process, dict[str, Any], float]:
    """The recognize service as its own process; returns it, its ready file and the seconds it took to be ready."""
    pin = ["taskset", "-c", ",".join(map(str, sorted(server_cpus)))] if server_cpus else []
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(*pin, sys.executable, "-m", "anpr.recognize", env=env)
    ready = workdir / "ready.json"
    while time.perf_counter() - started < start_timeout:
        if ready.exists():
            return process, json.loads(ready.read_text()), time.perf_counter() - started
        if process.returncode is not None:
            raise RuntimeError(f"recognize exited with status {process.returncode}")
        await asyncio.sleep(0.1)
    process.terminate()
    await process.wait()
    raise RuntimeError(f"recognize was not ready within {start_timeout:.0f} s")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stage_totals(metrics_url: str) -> dict[str, tuple[float, float]]:
    """(sum of seconds, images) per stage from the service's ``anpr_recognize_stage_seconds`` histogram."""
    with urllib.request.urlopen(metrics_url, timeout=10) as response:  # noqa: S310  (the service's own endpoint)
        text = response.read().decode()
    totals = {stage: [0.0, 0.0] for stage in STAGES}
    for family in text_string_to_metric_families(text):
        if family.name != "anpr_recognize_stage_seconds":
            continue
        for sample in family.samples:
            stage = sample.labels.get("stage", "")
            if stage in totals and sample.name.endswith("_sum"):
                totals[stage][0] = sample.value
            elif stage in totals and sample.name.endswith("_count"):
                totals[stage][1] = sample.value
    return {stage: (s, n) for stage, (s, n) in totals.items()}


# Load ---------------------------------------------------------------------------------------------------------


def client_process(
    address: str,
    token: str,
    frames: list[bytes],
    callers: int,
    images_per_call: int,
    start_at: float,
    seconds: float,
    offset: int,
    results: multiprocessing.Queue[dict[str, Any]],
) -> None:
    """One load-generating process: ``callers`` concurrent callers between wall-clock ``start_at`` and + seconds."""
    try:
        results.put(asyncio.run(drive(address, token, frames, callers, images_per_call, start_at, seconds, offset)))
    except Exception as exc:  # reported to the parent, which fails the run with it
        results.put({"error": repr(exc)})


async def drive(
    address: str,
    token: str,
    frames: list[bytes],
    callers: int,
    images_per_call: int,
    start_at: float,
    seconds: float,
    offset: int,
) -> dict[str, Any]:
    metadata = (("authorization", f"Bearer {token}"),)
    requests = [
        recognize_service_pb2.RecognizeRequest(
            images=[
                recognition_pb2.ImageInput(
                    image_id=str(j), image=image_pb2.EncodedImage(data=frames[(i + j) % len(frames)])
                )
                for j in range(images_per_call)
            ]
        )
        for i in range(len(frames))
    ]
    latencies: list[float] = []
    images = plates = 0
    options = [("grpc.max_send_message_length", 256 * 1024 * 1024), ("grpc.max_receive_message_length", 64 << 20)]
    async with grpc.aio.insecure_channel(address, options=options) as channel:
        stub = recognize_service_pb2_grpc.RecognizeServiceStub(channel)
        await stub.Recognize(requests[0], metadata=metadata)  # connection and warm-up
        await asyncio.sleep(max(0.0, start_at - time.time()))
        stop_at = start_at + seconds

        async def caller(index: int) -> None:
            nonlocal images, plates
            while time.time() < stop_at:
                started = time.perf_counter()
                response = await stub.Recognize(requests[index % len(requests)], metadata=metadata)
                latencies.append(time.perf_counter() - started)
                images += len(response.results)
                plates += sum(len(result.plates) for result in response.results)
                index += callers

        await asyncio.gather(*(caller(offset + i) for i in range(callers)))
    return {"latencies": latencies, "images": images, "plates": plates, "finished": time.time()}


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(
    address: str, token: str, frames: list[bytes], concurrency: int, seconds: float, pid: int, args: argparse.Namespace
) -> dict[str, Any]:
    """``concurrency`` calls in flight, spread over the client processes, for ``seconds``; the service (``pid``)
    CPU use is taken over the same window."""
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[dict[str, Any]] = context.Queue()
    processes_count = max(1, min(args.client_processes, concurrency))
    shares = [concurrency // processes_count + (i < concurrency % processes_count) for i in range(processes_count)]
    start_at = time.time() + args.client_start_seconds
    processes = [
        context.Process(
            target=client_process,
            args=(address, token, frames, share, args.images_per_call, start_at, seconds, sum(shares[:i]), queue),
        )
        for i, share in enumerate(shares)
    ]
    for process in processes:
        process.start()
    time.sleep(max(0.0, start_at - time.time()))
    cpu_before = cpu_seconds(pid)
    parts = [queue.get(timeout=args.client_start_seconds + seconds + 300) for _ in processes]
    cpu_used = cpu_seconds(pid) - cpu_before
    for process in processes:
        process.join()
    errors = [part["error"] for part in parts if "error" in part]
    if errors:
        raise RuntimeError(f"a client failed: {errors[0]}")
    ordered = sorted(latency for part in parts for latency in part["latencies"])
    images = sum(part["images"] for part in parts)
    elapsed = max(part["finished"] for part in parts) - start_at
    return {
        "concurrency": concurrency,
        "images_per_call": args.images_per_call,
        "calls": len(ordered),
        "frames": images,
        "plates_per_frame": sum(part["plates"] for part in parts) / max(1, images),
        "frames_per_second": images / elapsed,
        "call_latency_seconds": {
            "p50": percentile(ordered, 0.50),
            "p95": percentile(ordered, 0.95),
            "p99": percentile(ordered, 0.99),
        },
        "service_cpus_busy": cpu_used / elapsed,
    }


async def measure_run(
    run: Run, frames: list[bytes], args: argparse.Namespace, server_cpus: set[int] | None, decode_fps: float
) -> dict[str, Any]:
    """Start the service for ``run``, check it serves on the provider asked for, and measure every concurrency."""
    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        env = service_environment(run, args, workdir, token)
        process, ready, ready_seconds = await start_service(env, server_cpus, workdir, args.start_timeout)
        try:
            address = ready["grpc_address"]
            async with grpc.aio.insecure_channel(address) as channel:
                stub = recognize_service_pb2_grpc.RecognizeServiceStub(channel)
                info = await stub.GetModelInfo(
                    recognize_service_pb2.GetModelInfoRequest(), metadata=(("authorization", f"Bearer {token}"),)
                )
            serving = info.model.execution_provider
            result: dict[str, Any] = {
                "run": run.name,
                "providers_requested": list(PROVIDERS[run.provider]),
                "execution_provider": serving,
                "fp16": run.precision == "fp16",
                "model": f"{info.model.name} {info.model.version}",
                "ready_seconds": ready_seconds,
                "fell_back": serving != PROVIDERS[run.provider][0],
                "loads": [],
            }
            if result["fell_back"]:
                # Numbers measured on a fallback would be reported under the wrong provider: stop here.
                return result
            if args.warmup_seconds > 0:
                # TensorRT builds an engine for each new batch shape it meets: let that happen before measuring.
                await asyncio.to_thread(
                    measure, address, token, frames, max(args.concurrency), args.warmup_seconds, ready["pid"], args
                )
            for concurrency in args.concurrency:
                before = stage_totals(ready["metrics_url"])
                sampler = GpuSampler()
                sampler.start()
                load = await asyncio.to_thread(
                    measure, address, token, frames, concurrency, args.seconds, ready["pid"], args
                )
                load["gpu"] = sampler.stop()
                load["share_of_cpu_decode_capacity"] = load["frames_per_second"] / decode_fps
                after = stage_totals(ready["metrics_url"])
                load["stage_ms_per_frame"] = {
                    stage: 1000 * (after[stage][0] - before[stage][0]) / max(1.0, after[stage][1] - before[stage][1])
                    for stage in STAGES
                }
                result["loads"].append(load)
                print(
                    f"{run.name} c={concurrency}: {load['frames_per_second']:.1f} frames/s, "
                    f"p99 {1000 * load['call_latency_seconds']['p99']:.0f} ms",
                    file=sys.stderr,
                )
            return result
        finally:
            process.terminate()
            await process.wait()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    server_cpus = parse_cpus(args.server_cpus)
    frames = jpeg_scenes(args.frames, args.seed)
    own = os.sched_getaffinity(0)
    if server_cpus:
        os.sched_setaffinity(0, server_cpus)
    try:
        threads = args.decode_workers or len(server_cpus or own)
        capacity = decode_capacity(args.models, frames, threads, args.decode_seconds)
    finally:
        os.sched_setaffinity(0, own)
    if server_cpus and own - server_cpus:
        # Load generation stays off the service's CPUs, so it takes none of their decode capacity.
        os.sched_setaffinity(0, own - server_cpus)
    runs: list[dict[str, Any]] = []
    for provider in args.provider:
        for precision in args.precision:
            run = Run(provider, precision)
            if precision not in PRECISIONS[provider]:
                runs.append({"run": run.name, "skipped": f"{provider} runs the fp32 graphs; fp16 needs TensorRT"})
                continue
            reason = unavailable(run)
            runs.append(
                {"run": run.name, "skipped": reason}
                if reason
                else await measure_run(run, frames, args, server_cpus, capacity["decode_frames_per_second"])
            )
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": device(),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "models": str(args.models),
        "frames": {"count": len(frames), "size": "1920x1080", "mean_jpeg_bytes": sum(map(len, frames)) / len(frames)},
        "server_cpus": sorted(server_cpus) if server_cpus else "all",
        "cpu_decode_capacity": capacity,
        "target_frames_per_second_per_h100": 3000,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", nargs="+", choices=sorted(PROVIDERS), default=["tensorrt", "cuda", "cpu"])
    parser.add_argument("--precision", nargs="+", choices=("fp16", "fp32"), default=["fp16", "fp32"])
    parser.add_argument("--models", type=Path, default=MODELS_DIR)
    parser.add_argument("--frames", type=int, default=64, help="distinct JPEG frames, sent round robin")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured time per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32, 128, 512], help="calls in flight")
    parser.add_argument("--images-per-call", type=int, default=8)
    parser.add_argument("--client-processes", type=int, default=4)
    parser.add_argument("--warmup-seconds", type=float, default=10.0, help="unmeasured load before each run")
    parser.add_argument("--client-start-seconds", type=float, default=3.0, help="time for clients to connect")
    parser.add_argument("--server-cpus", help="taskset list for the service (e.g. 0-11); clients use the rest")
    parser.add_argument("--trt-cache", type=Path, default=Path.home() / ".cache" / "anpr-bench" / "tensorrt")
    parser.add_argument("--start-timeout", type=float, default=1800.0, help="seconds; TensorRT builds take minutes")
    parser.add_argument("--decode-seconds", type=float, default=4.0, help="time for the CPU decode capacity check")
    for setting in ("intra-op-threads", "inference-workers", "decode-workers", "detect-batch-size", "read-batch-size"):
        parser.add_argument(f"--{setting}", type=int, help=f"the service's {setting.replace('-', '_')} setting")
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
