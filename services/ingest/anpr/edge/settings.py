"""Settings of the edge agent (environment prefix ``ANPR_EDGE_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from anpr.runtime.settings import DEFAULT_DATA_DIR, Port


class EdgeSettings(BaseSettings):
    """Everything the edge agent reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="ANPR_EDGE_", extra="forbid", frozen=True, validate_default=True)

    camera_id: str = Field(description="Registered camera id the frames belong to.", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    video_source: str = Field(
        description="Video device index (e.g. 0), device path (/dev/video0), rtsp:// URI or video file path."
    )
    loop_video: bool = Field(False, description="For a video file: start again at its end (testing, demos).")
    target_fps: float = Field(5.0, gt=0, le=60, description="Frames per second sampled and sent.")
    jpeg_quality: int = Field(90, ge=30, le=100, description="JPEG quality of sent frames.")
    gps_source: str | None = Field(
        None,
        description="gpsd://host:port for gpsd JSON, or a path to an NMEA 0183 file or serial device; unset: no GPS.",
    )
    gps_max_age_seconds: float = Field(5.0, gt=0, description="A fix older than this is not attached to frames.")

    ingest_target: str = Field("dns:///127.0.0.1:50051", description="gRPC target of the ingest service.")
    token_file: Path | None = Field(None, description="File holding this camera's bearer token.")
    tls_ca_file: Path | None = Field(None, description="PEM CA bundle; when set the link to ingest uses TLS.")
    push_window: int = Field(16, ge=1, le=1024, description="Frames sent but not yet acknowledged, at most.")
    reconnect_initial_seconds: float = Field(0.5, gt=0, le=60, description="First delay before reconnecting.")
    reconnect_max_seconds: float = Field(30.0, gt=0, le=3600, description="Longest delay before reconnecting.")

    buffer_path: Path = Field(DEFAULT_DATA_DIR / "edge-buffer.sqlite3", description="SQLite file of unsent frames.")
    buffer_max_bytes: int = Field(
        512 * 1024 * 1024, ge=1024, description="Size cap of buffered frames; the oldest are evicted beyond it."
    )

    metrics_host: str = Field("127.0.0.1", description="Address of the Prometheus endpoint.")
    metrics_port: Port = Field(9111, description="Prometheus port; 0 picks a free port.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Root log level.")
    log_format: Literal["json", "text"] = Field("json", description="json for production, text for a terminal.")

    @model_validator(mode="after")
    def _check(self) -> EdgeSettings:
        for name in ("token_file", "tls_ca_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: no such file: {path}")
        if self.reconnect_initial_seconds > self.reconnect_max_seconds:
            raise ValueError("reconnect_initial_seconds must not exceed reconnect_max_seconds")
        return self
