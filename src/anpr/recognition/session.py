"""ONNX Runtime session creation: the one place that picks execution providers and threads.

Automatic order is TensorRT, then CUDA, then CPU, restricted to what the installed onnxruntime offers. GPU
providers are only tried when an NVIDIA device is visible: the GPU wheel lists them even on CPU-only hosts, and
trying them there costs a failed library load and an error in the log for every session.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# No stubs or py.typed upstream; "unused-ignore" keeps this valid if pyproject later ignores the module.
import onnxruntime as ort  # type: ignore[import-untyped,unused-ignore]

from anpr.recognition.errors import ModelError
from anpr.runtime.cpus import usable_cpus

logger = logging.getLogger(__name__)

AUTO_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
_GPU_PROVIDERS = frozenset({"TensorrtExecutionProvider", "CUDAExecutionProvider"})


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
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


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
    providers: list[str | tuple[str, dict[str, Any]]] = []
    for name in choose_providers(options.providers):
        if name == "TensorrtExecutionProvider":
            trt: dict[str, Any] = {"trt_fp16_enable": options.fp16}
            if options.trt_cache_dir is not None:
                trt |= {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(options.trt_cache_dir)}
            providers.append((name, trt))
        else:
            providers.append(name)
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
