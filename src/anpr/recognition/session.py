"""ONNX Runtime session creation: the one place that picks execution providers and threads.

Automatic order is TensorRT, then CUDA, then CPU, restricted to what the installed onnxruntime offers. GPU
providers are only tried when an NVIDIA device is visible: the GPU wheel lists them even on CPU-only hosts, and
trying them there costs a failed library load and an error in the log for every session. TensorRT is tried only
when its library loads too: the recognize-gpu extra brings CUDA and cuDNN, TensorRT is a separate install.

With the GPU wheel, CUDA and cuDNN come from NVIDIA's PyPI packages (onnxruntime-gpu's ``cuda`` and ``cudnn``
extras), which are not on the loader's search path: :func:`create_session` preloads them before the first GPU
session. TensorRT builds an engine per model and input shape, which takes minutes; with a cache directory on a
persistent volume the engines and the timing cache survive restarts, so only the first start on a GPU model pays.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anpr.recognition.errors import ModelError
from anpr.runtime.cpus import usable_cpus
from anpr.runtime.extras import MissingExtraError

try:
    # No stubs or py.typed upstream; "unused-ignore" keeps this valid if pyproject later ignores the module.
    import onnxruntime as ort  # type: ignore[import-untyped,unused-ignore]
except ImportError as exc:  # the core install (ingest, hotlist) leaves the inference runtime out
    raise MissingExtraError("recognize", "plate recognition", "onnxruntime") from exc

logger = logging.getLogger(__name__)

AUTO_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
_GPU_PROVIDERS = frozenset({"TensorrtExecutionProvider", "CUDAExecutionProvider"})
# The TensorRT major version onnxruntime-gpu 1.31 links (pyproject's `tensorrt` extra pins the same major).
_TENSORRT_LIBRARY = "libnvinfer.so.10"


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """How to run models.

    ``providers``: provider names in order of preference, or empty for the automatic order.
    ``intra_op_threads``: threads per operator; 0 for the CPUs the process may use, 1 for one core per call.
    ``trt_cache_dir``: where TensorRT keeps built engines (building takes minutes; the cache makes restarts fast).
    ``fp16``: allow half precision where the provider supports it (TensorRT).
    """

    providers: tuple[str, ...] = ()
    intra_op_threads: int = 0
    trt_cache_dir: Path | None = None
    fp16: bool = True


def _gpu_visible() -> bool:
    return os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia/version")


@functools.cache
def _tensorrt_loadable() -> bool:
    try:
        ctypes.CDLL(_TENSORRT_LIBRARY)
    except OSError:
        return False
    return True


@functools.cache
def _preload_gpu_libraries() -> None:
    # onnxruntime >= 1.21: loads CUDA and cuDNN from the nvidia-* wheels in site-packages (directory="": those
    # first, then the system's); without it the CUDA provider fails to load and sessions fall back to the CPU.
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        preload(directory="")


def choose_providers(requested: Sequence[str] = ()) -> list[str]:
    """Providers to use: ``requested`` (validated) or the automatic order; CPU is always the last resort."""
    available = ort.get_available_providers()
    if requested:
        unknown = [name for name in requested if name not in available]
        if unknown:
            raise ModelError(f"execution provider(s) {', '.join(unknown)} not available; available: {available}")
        chosen = list(requested)
    else:
        gpu = _gpu_visible()
        chosen = [name for name in AUTO_ORDER if name in available and (gpu or name not in _GPU_PROVIDERS)]
        if "TensorrtExecutionProvider" in chosen and not _tensorrt_loadable():
            chosen.remove("TensorrtExecutionProvider")
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


def provider_options(name: str, options: SessionOptions) -> dict[str, Any]:
    """The options ONNX Runtime gets for provider ``name`` (empty: its defaults).

    TensorRT: fp16 as ``options.fp16`` says; with ``options.trt_cache_dir``, built engines and the timing cache
    (kernel timings, which make later builds of other shapes faster) are kept there across restarts.
    """
    if name != "TensorrtExecutionProvider":
        return {}
    trt: dict[str, Any] = {"trt_fp16_enable": options.fp16}
    if options.trt_cache_dir is not None:
        cache = str(options.trt_cache_dir)
        trt |= {
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": cache,
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": cache,
        }
    return trt


def create_session(path: Path, options: SessionOptions | None = None) -> ort.InferenceSession:
    """Load one ONNX model with the chosen providers; raises :class:`ModelError` with the reason on failure."""
    options = options or SessionOptions()
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    session_options = ort.SessionOptions()
    # 0 would let ONNX Runtime take every core of the machine, whatever the process's affinity or CPU quota.
    session_options.intra_op_num_threads = options.intra_op_threads or usable_cpus()
    # One inter-op thread: the pipeline parallelises across calls (executor threads), not inside one graph.
    session_options.inter_op_num_threads = 1
    session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    chosen = choose_providers(options.providers)
    if _GPU_PROVIDERS.intersection(chosen):
        _preload_gpu_libraries()
    if "TensorrtExecutionProvider" in chosen and options.trt_cache_dir is not None:
        try:
            options.trt_cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ModelError(f"TensorRT cache directory {options.trt_cache_dir} cannot be created: {exc}") from exc
    providers = [(name, provider_options(name, options)) for name in chosen]
    try:
        session = ort.InferenceSession(str(path), sess_options=session_options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors for malformed graphs
        raise ModelError(f"model file {path} could not be loaded: {exc}") from exc
    logger.info("loaded model %s with providers %s", path.name, session.get_providers())
    return session


@dataclass(frozen=True, slots=True)
class ModelIO:
    """The one input of a loaded model (its name and shape) and the name of its first output."""

    input_name: str
    input_shape: list[Any]
    output_name: str
    output_shape: list[Any]


def single_input(session: ort.InferenceSession, role: str, path: Path, dtype: str) -> ModelIO:
    """Check that a model has exactly one input of ``dtype`` (e.g. ``tensor(float)``); :class:`ModelError` if not.

    ``role`` (``reader``, ``detector``) and ``path`` name the model in the message.
    """
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise ModelError(f"{role} {path}: expected 1 input, found {len(inputs)}")
    tensor = inputs[0]
    if tensor.type != dtype:
        names = {"tensor(float)": "float32", "tensor(uint8)": "uint8"}
        raise ModelError(f"{role} {path}: input must be {names.get(dtype, dtype)} ({dtype}), found {tensor.type}")
    return ModelIO(str(tensor.name), list(tensor.shape), str(outputs[0].name), list(outputs[0].shape))
