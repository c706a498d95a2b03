"""``bench/recognize/gpu_bench.py`` keeps working while no GPU machine is at hand to run it.

Its GPU runs cannot happen here, so what can break unseen is checked: the environment it gives the service for
every provider and precision passes the service's own settings loader (a renamed setting would otherwise surface
only on the GPU machine), and a short CPU run through gRPC reports real frames with per-stage times.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from anpr.recognize.settings import RecognizeSettings
from anpr.runtime.settings import load_settings

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "recognize" / "gpu_bench.py"


@pytest.fixture(scope="module")
def gpu_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_bench", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while they are made
    spec.loader.exec_module(module)
    return module


def test_every_run_configures_the_service_through_its_own_settings(
    gpu_bench: ModuleType, tmp_path: Path, test_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = argparse.Namespace(
        models=test_model_dir,
        trt_cache=tmp_path / "trt",
        images_per_call=8,
        concurrency=[32, 512],
        intra_op_threads=None,
        inference_workers=2,
        decode_workers=12,
        detect_batch_size=32,
        read_batch_size=None,
    )
    for provider, precisions in gpu_bench.PRECISIONS.items():
        for precision in precisions:
            env = gpu_bench.service_environment(gpu_bench.Run(provider, precision), args, tmp_path, "token")
            # Through the process environment, as the service reads it (lists arrive as JSON there).
            for key in [k for k in os.environ if k.startswith("ANPR_RECOGNIZE_")]:
                monkeypatch.delenv(key)
            for key, value in env.items():
                if key.startswith("ANPR_RECOGNIZE_"):
                    monkeypatch.setenv(key, value)
            settings = load_settings(RecognizeSettings)
            assert settings.providers[0] == gpu_bench.PROVIDERS[provider][0]
            assert settings.fp16 is (precision == "fp16")
            assert (settings.tensorrt_cache_dir is not None) is (provider == "tensorrt")
            assert (settings.inference_workers, settings.decode_workers) == (2, 12)
            assert settings.max_queued_images >= 8 * 512


def test_a_short_cpu_run_measures_frames_through_grpc(tmp_path: Path, test_model_dir: Path) -> None:
    out = tmp_path / "result.json"
    command = [sys.executable, str(SCRIPT), "--provider", "cpu", "cuda", "--precision", "fp32", "--models"]
    command += [str(test_model_dir), "--seconds", "1", "--warmup-seconds", "0", "--concurrency", "2"]
    command += ["--frames", "2", "--images-per-call", "2", "--client-processes", "1", "--decode-seconds", "0.2"]
    command += ["--trt-cache", str(tmp_path / "trt"), "--out", str(out)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert finished.returncode == 0, finished.stderr[-4000:]
    result = json.loads(out.read_text())
    cpu, cuda = result["runs"]
    assert (cpu["execution_provider"], cpu["fell_back"]) == ("CPUExecutionProvider", False)
    (load,) = cpu["loads"]
    assert load["frames"] > 0
    assert load["frames"] == 2 * load["calls"]
    assert load["frames_per_second"] > 0
    assert load["call_latency_seconds"]["p50"] <= load["call_latency_seconds"]["p99"]
    assert load["stage_ms_per_frame"]["decode"] > 0
    assert load["stage_ms_per_frame"]["detect"] > 0
    assert result["cpu_decode_capacity"]["decode_frames_per_second"] > 0
    # Without a GPU (CI) the CUDA run is skipped with its reason; it is never measured on the CPU under CUDA's name.
    assert cuda["run"] == "cuda-fp32"
    if "skipped" not in cuda:
        assert cuda["execution_provider"] == "CUDAExecutionProvider" or cuda["loads"] == []
