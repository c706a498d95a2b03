"""Settings of the recognize service (environment prefix ``ANPR_RECOGNIZE_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from anpr.domain.regions import normalise_regions
from anpr.runtime.errors import InvalidArgument
from anpr.runtime.settings import Port, ServiceSettings


class RecognizeSettings(ServiceSettings):
    """Everything the recognize service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="ANPR_RECOGNIZE_")

    grpc_port: Port = Field(50052, description="gRPC port; 0 picks a free port.")
    metrics_port: Port = Field(9102, description="Prometheus port; 0 picks a free port.")

    model_dir: Path | None = Field(
        None, description="Directory with manifest.yaml of the models to serve; empty: the project's shipped models."
    )
    model_poll_seconds: float = Field(
        5.0, ge=0, le=3600, description="How often to look for changed model files (0: only ReloadModels reloads)."
    )
    providers: list[str] = Field(
        default_factory=list,
        description="ONNX Runtime execution providers in order; empty: TensorRT, CUDA, CPU as available.",
    )
    intra_op_threads: int = Field(
        1, ge=0, le=256, description="Threads per model call (0: the CPUs the process may use)."
    )
    fp16: bool = Field(True, description="Half precision where the provider supports it (TensorRT).")
    tensorrt_cache_dir: Path | None = Field(
        None,
        description="Where TensorRT keeps built engines and its timing cache across restarts: a persistent volume "
        "(the GPU image sets /var/cache/anpr/tensorrt). Empty: every start builds the engines again (minutes).",
    )
    inference_workers: int = Field(
        0, ge=0, le=64, description="Model batches run at once per stage (0: one per CPU the process may use)."
    )
    decode_workers: int = Field(
        0, ge=0, le=256, description="Threads decoding images (0: one per CPU the process may use)."
    )

    default_plate_regions: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Plate regions expected when a request and its image name none, most likely first, comma "
        "separated: ISO 3166-1 countries or ISO 3166-2 subdivisions (e.g. ZA-WC,ZA). Correction prefers their "
        "formats and never forces a reading into another country's without the reader's own evidence.",
    )

    max_images_per_request: int = Field(64, ge=1, le=1024, description="Most images in one Recognize call.")
    max_image_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024, description="Largest encoded image accepted, in bytes."
    )
    max_image_pixels: int = Field(
        40_000_000, ge=10_000, le=1_000_000_000, description="Largest width x height decoded (decompression bombs)."
    )
    detect_batch_size: int = Field(16, ge=1, le=512, description="Most frames per detector batch.")
    read_batch_size: int = Field(64, ge=1, le=2048, description="Most plate crops per reader batch.")
    max_batch_wait_seconds: float = Field(
        0.003, ge=0, le=1, description="Longest an item waits for its batch to fill before the batch runs anyway."
    )
    max_queued_images: int = Field(
        256, ge=1, le=100_000, description="Images waiting for detection before new work is refused (overload)."
    )
    stream_window: int = Field(
        16, ge=1, le=1024, description="Images of one StreamRecognize call in flight at once (flow control)."
    )

    @field_validator("default_plate_regions", mode="before")
    @classmethod
    def _regions(cls, value: object) -> list[str]:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ValueError("a comma-separated list of plate regions, e.g. ZA-WC,ZA")
        try:
            return list(normalise_regions((str(item).strip() for item in items if str(item).strip()), "regions"))
        except InvalidArgument as exc:
            raise ValueError(exc.message) from exc
