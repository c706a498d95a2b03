"""Execution providers and their options: what ONNX Runtime is asked for (no GPU needed to check it)."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort  # type: ignore[import-untyped,unused-ignore]
import pytest

from anpr.recognition import ModelError, SessionOptions, choose_providers, create_session, load_manifest
from anpr.recognition import session as session_module
from anpr.recognition.models import MODELS_DIR

TRT = "TensorrtExecutionProvider"


def test_tensorrt_options_keep_engines_and_timings_in_the_cache_directory(tmp_path: Path) -> None:
    options = SessionOptions(trt_cache_dir=tmp_path / "trt", fp16=True)
    assert session_module.provider_options(TRT, options) == {
        "trt_fp16_enable": True,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(tmp_path / "trt"),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(tmp_path / "trt"),
    }


def test_tensorrt_without_a_cache_directory_builds_engines_afresh_and_fp16_follows_the_setting() -> None:
    assert session_module.provider_options(TRT, SessionOptions(fp16=False)) == {"trt_fp16_enable": False}


def test_other_providers_run_with_their_defaults(tmp_path: Path) -> None:
    options = SessionOptions(trt_cache_dir=tmp_path)
    for name in ("CUDAExecutionProvider", "CPUExecutionProvider"):
        assert session_module.provider_options(name, options) == {}


def test_tensorrt_is_left_out_of_the_automatic_order_when_its_library_does_not_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A GPU node with onnxruntime-gpu but without TensorRT: the wheel still lists the provider.
    monkeypatch.setattr(ort, "get_available_providers", lambda: [TRT, "CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(session_module, "_gpu_visible", lambda: True)
    monkeypatch.setattr(session_module, "_TENSORRT_LIBRARY", "libanpr-no-such-library.so.10")
    session_module._tensorrt_loadable.cache_clear()
    try:
        assert choose_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    finally:
        session_module._tensorrt_loadable.cache_clear()


def test_no_gpu_provider_is_chosen_without_a_visible_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort, "get_available_providers", lambda: [TRT, "CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(session_module, "_gpu_visible", lambda: False)
    assert choose_providers() == ["CPUExecutionProvider"]


def test_an_unavailable_requested_provider_is_refused_by_name() -> None:
    with pytest.raises(ModelError, match="NoSuchExecutionProvider"):
        choose_providers(["NoSuchExecutionProvider"])


def test_a_cpu_session_loads_a_shipped_model_with_the_options() -> None:
    reader = load_manifest(MODELS_DIR).reader.path
    session = create_session(reader, SessionOptions(providers=("CPUExecutionProvider",), intra_op_threads=1))
    assert session.get_providers() == ["CPUExecutionProvider"]
