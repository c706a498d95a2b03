"""Settings of the edge agent (environment prefix ``ANPR_EDGE_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from anpr.runtime.settings import DEFAULT_DATA_DIR, Port
from anpr.runtime.tls import ClientTls, target_is_loopback


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
    tls_ca_file: Path | None = Field(
        None, description="PEM CA bundle that verifies ingest; when set (or a client certificate is) the link uses TLS."
    )
    tls_cert_file: Path | None = Field(
        None, description="PEM client certificate presented to ingest (mutual TLS); re-read when it changes."
    )
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file.")
    tls_server_name: str | None = Field(
        None, max_length=253, description="Name expected in ingest's certificate when it differs from the target."
    )
    allow_plaintext: bool = Field(
        False,
        description="Send frames and the camera token in plaintext to a non-loopback ingest_target (refused "
        "without it); only over a link that is encrypted otherwise (VPN).",
    )
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

    @property
    def tls(self) -> ClientTls | None:
        """TLS of the link to ingest, or None for plaintext."""
        if self.tls_ca_file is None and self.tls_cert_file is None:
            return None
        return ClientTls(self.tls_ca_file, self.tls_cert_file, self.tls_key_file, self.tls_server_name)

    @model_validator(mode="after")
    def _check(self) -> EdgeSettings:
        for name in ("token_file", "tls_ca_file", "tls_cert_file", "tls_key_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: no such file: {path}")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file must be set together")
        if self.tls is None and not self.allow_plaintext and not target_is_loopback(self.ingest_target):
            raise ValueError(
                f"ingest_target {self.ingest_target} is not on loopback and TLS is off (frames and the camera token "
                "would travel in clear): set tls_ca_file, or allow_plaintext=true deliberately"
            )
        if self.reconnect_initial_seconds > self.reconnect_max_seconds:
            raise ValueError("reconnect_initial_seconds must not exceed reconnect_max_seconds")
        return self
