"""Settings of the ingest service (environment prefix ``ANPR_INGEST_``)."""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from anpr.ingest.source_policy import SourcePolicy, parse_names, parse_networks
from anpr.runtime.settings import DEFAULT_DATA_DIR, DatabaseSettings, Port, ServiceSettings
from anpr.runtime.tls import ClientTls, target_is_loopback


def default_replica_id() -> str:
    """Unique among live processes, readable in the table: host name (pod name), pid, random suffix (two
    services in one process, as in tests, must not share an id)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class IngestSettings(ServiceSettings, DatabaseSettings):
    """Everything the ingest service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="ANPR_INGEST_")

    grpc_port: Port = Field(50051, description="gRPC port; 0 picks a free port.")
    metrics_port: Port = Field(9101, description="Prometheus port; 0 picks a free port.")

    # Downstream services.
    recognize_target: str = Field(
        "dns:///127.0.0.1:50052",
        description="gRPC target of the recognize service; a dns:/// name resolving to every replica spreads load.",
    )
    hotlist_target: str = Field("dns:///127.0.0.1:50053", description="gRPC target of the hotlist service.")
    service_token_file: Path | None = Field(
        None, description="File holding the bearer token ingest presents to recognize and hotlist (role service)."
    )
    client_tls_ca_file: Path | None = Field(
        None,
        description="PEM CA bundle that verifies recognize and hotlist; when set (or a client certificate is), "
        "ingest's channels to them use TLS. Re-read when it changes.",
    )
    client_tls_cert_file: Path | None = Field(
        None, description="PEM client certificate ingest presents to recognize and hotlist (mutual TLS)."
    )
    client_tls_key_file: Path | None = Field(None, description="PEM private key of client_tls_cert_file.")
    recognize_tls_server_name: str | None = Field(
        None, max_length=253, description="Name expected in recognize's certificate when it differs from the target."
    )
    hotlist_tls_server_name: str | None = Field(
        None, max_length=253, description="Name expected in hotlist's certificate when it differs from the target."
    )

    # Frame admission.
    default_max_frame_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024, description="Frame size limit for cameras without their own."
    )
    default_max_frames_per_second: float = Field(
        30.0, gt=0, le=1000, description="Sustained frame rate limit for cameras without their own."
    )
    rate_burst_seconds: float = Field(
        2.0, gt=0, le=60, description="Seconds of frames at the rate limit a camera may send in one burst."
    )
    dedupe_window_frames: int = Field(
        100_000, ge=100, le=10_000_000, description="Most (camera, frame id) pairs remembered for idempotency."
    )
    dedupe_window_seconds: float = Field(
        600.0, gt=0, le=86_400, description="How long a frame id is remembered for idempotent resubmission."
    )
    max_frame_age_seconds: float = Field(
        86_400.0, gt=0, description="Oldest capture time accepted (edge agents drain buffered frames late)."
    )
    max_clock_skew_seconds: float = Field(300.0, ge=0, description="How far in the future a capture time may be.")
    max_pending_frames: int = Field(
        256, ge=1, le=100_000, description="Frames accepted but not yet recognised, across all cameras (memory bound)."
    )
    overload_wait_seconds: float = Field(
        1.0, ge=0, le=60, description="How long a frame waits for room in the pending queue before it is throttled."
    )
    max_queue_seconds: float = Field(
        5.0,
        gt=0,
        le=300,
        description="Cameras are throttled while the oldest accepted frame has waited this long for recognition.",
    )
    journal_max_hold_seconds: float = Field(
        120.0,
        gt=0,
        le=86_400,
        description="Longest an accepted frame stays journaled for a pass still open (a plate parked in view); after "
        "a crash a pass open longer than this may get a second event.",
    )
    frame_journal_path: Path | None = Field(
        None,
        description="SQLite file holding accepted frames until their plate events are spooled; by default "
        "beside spool_path (<spool name>-frames.sqlite3), on the same persistent volume.",
    )
    camera_online_window_seconds: float = Field(
        30.0, gt=0, description="A camera whose last frame is older than this is reported offline."
    )

    # Recognition.
    recognize_batch_size: int = Field(16, ge=1, le=256, description="Most frames per Recognize call.")
    recognize_batch_wait_seconds: float = Field(
        0.02, ge=0, le=5, description="Longest a frame waits for its batch to fill."
    )
    recognize_concurrency: int = Field(4, ge=1, le=256, description="Recognize calls in flight at once.")
    recognize_deadline_seconds: float = Field(10.0, gt=0, le=300, description="Deadline of each Recognize call.")
    recognize_attempts: int = Field(
        4,
        ge=1,
        le=20,
        description="Attempts per batch that times out or fails inside recognize before its frames are tried one "
        "by one (an unreachable or overloaded recognize is waited for without limit).",
    )

    # Tracking.
    track_timeout_seconds: float = Field(
        1.5, gt=0, le=60, description="A pass ends when its plate was not seen for this long (capture time)."
    )
    track_max_missed_frames: int = Field(
        8, ge=1, le=1000, description="A pass also ends after this many frames of its camera without the plate."
    )
    track_max_reads: int = Field(
        64,
        ge=8,
        le=10_000,
        description="Reads a pass keeps for its vote (its first, latest and most confident): a car parked in view "
        "stays one pass, and a vote over every read would cost more on every frame the longer it stays.",
    )
    early_min_reads: int = Field(3, ge=1, le=100, description="Agreeing reads needed before an early event.")
    early_after_seconds: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="A pass still open this long (a car parked or queued in view) raises its early event however "
        "unsure its reads, instead of only when the car leaves.",
    )
    final_min_reads: int = Field(2, ge=1, le=100, description="Reads a pass needs to produce an event at all.")
    crop_max_text_distance: int = Field(
        1,
        ge=0,
        le=4,
        description="Characters a plate-crop camera's crop may differ from an open pass's text and still join it "
        "(crops carry no motion to tell two vehicles apart).",
    )

    # Delivery and retention.
    spool_path: Path = Field(
        DEFAULT_DATA_DIR / "ingest-spool.sqlite3", description="SQLite file where undelivered events wait."
    )
    delivery_batch_size: int = Field(100, ge=1, le=10_000, description="Most events per ReportReads call.")
    delivery_deadline_seconds: float = Field(10.0, gt=0, le=300, description="Deadline of each ReportReads call.")
    delivery_backoff_max_seconds: float = Field(
        10.0, gt=0, le=600, description="Longest wait between delivery attempts while hotlist is unreachable."
    )
    event_retention_seconds: float = Field(
        7 * 86_400.0, gt=0, description="How long emitted events stay queryable through GetPlateEvents."
    )
    dead_letter_retention_seconds: float = Field(
        7 * 86_400.0,
        gt=0,
        description="How long events the hotlist service refused (dead letters, with their crops) are kept for "
        "inspection and replay before retention deletes them.",
    )
    store_backoff_max_seconds: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Longest wait between attempts to write owed events to the event table while PostgreSQL is "
        "unreachable.",
    )

    # Pulled sources.
    source_default_fps: float = Field(5.0, gt=0, le=120, description="Sampling rate of sources that state none.")
    source_backoff_initial_seconds: float = Field(0.5, gt=0, le=60, description="First reconnection delay.")
    source_backoff_max_seconds: float = Field(30.0, gt=0, le=3600, description="Longest reconnection delay.")
    source_lease_seconds: float = Field(
        10.0,
        ge=0.3,
        le=600,
        description="Lease period of a pulled source (renewed every third of it): how long a source stays unpulled "
        "after its replica dies, and how soon a replica that cannot reach the database stops pulling.",
    )
    source_allowed_schemes: str = Field(
        "rtsp,rtsps,http,https",
        description="Comma-separated URI schemes a stream source may use (also bound by its kind).",
    )
    source_allowed_networks: str = Field(
        "",
        description="Comma-separated CIDR networks a stream source's IP address must lie in (e.g. the camera "
        "VLAN 10.20.0.0/16); empty admits no address. Loopback, link-local and the cluster network are refused "
        "unless listed.",
    )
    source_allowed_hosts: str = Field(
        "",
        description="Comma-separated host names a stream source may name; '.example.org' admits every name under "
        "it. Names are not resolved: list only names whose DNS you control.",
    )
    file_source_dir: Path | None = Field(
        None,
        description="File sources must lie under this directory (symbolic links resolved); unset disables them.",
    )

    # Uploaded recordings (UploadRecording).
    recording_dir: Path | None = Field(
        None,
        description="Directory where uploaded recordings are staged until sampled (and partial uploads wait to be "
        "resumed); by default beside spool_path (<spool name>-recordings), on the same persistent volume.",
    )
    recording_max_bytes: int = Field(
        2 * 1024**3, ge=1024, le=64 * 1024**3, description="Largest recording an upload may carry, in bytes."
    )
    recording_resume_seconds: float = Field(
        86_400.0,
        gt=0,
        le=30 * 86_400,
        description="How long the bytes of an interrupted upload are kept for it to be resumed.",
    )
    recording_sample_fps: float = Field(
        5.0, gt=0, le=120, description="Frames per second of recording time sampled from an uploaded recording."
    )
    replica_id: str = Field(
        default_factory=default_replica_id,
        min_length=1,
        max_length=200,
        description="Identity of this replica in source leases; must differ between live replicas. Default: "
        "host name (the pod name in Kubernetes), process id and a random suffix.",
    )

    @property
    def source_policy(self) -> SourcePolicy:
        """The allow-lists of pulled sources."""
        return SourcePolicy(
            parse_names(self.source_allowed_schemes),
            parse_networks(self.source_allowed_networks),
            parse_names(self.source_allowed_hosts),
            self.file_source_dir,
        )

    @property
    def journal_path(self) -> Path:
        """Where the frame journal lives."""
        if self.frame_journal_path is not None:
            return self.frame_journal_path
        return self.spool_path.with_name(f"{self.spool_path.stem}-frames.sqlite3")

    @property
    def recordings_path(self) -> Path:
        """Where uploaded recordings are staged."""
        if self.recording_dir is not None:
            return self.recording_dir
        return self.spool_path.with_name(f"{self.spool_path.stem}-recordings")

    def client_tls(self, server_name: str | None) -> ClientTls | None:
        """TLS of a channel to recognize or hotlist, or None for plaintext."""
        if self.client_tls_ca_file is None and self.client_tls_cert_file is None:
            return None
        return ClientTls(self.client_tls_ca_file, self.client_tls_cert_file, self.client_tls_key_file, server_name)

    @model_validator(mode="after")
    def _check_ingest(self) -> IngestSettings:
        for name in ("service_token_file", "client_tls_ca_file", "client_tls_cert_file", "client_tls_key_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: no such file: {path}")
        if (self.client_tls_cert_file is None) != (self.client_tls_key_file is None):
            raise ValueError("client_tls_cert_file and client_tls_key_file must be set together")
        if self.client_tls_ca_file is None and self.client_tls_cert_file is None and not self.allow_plaintext:
            for name in ("recognize_target", "hotlist_target"):
                if not target_is_loopback(getattr(self, name)):
                    raise ValueError(
                        f"{name} {getattr(self, name)} is not on loopback and TLS to it is off (the service token "
                        "would travel in clear): set client_tls_ca_file, or allow_plaintext=true deliberately"
                    )
        try:
            parse_networks(self.source_allowed_networks)
        except ValueError as exc:
            raise ValueError(f"source_allowed_networks: {exc}") from None
        unknown = set(parse_names(self.source_allowed_schemes)) - {"rtsp", "rtsps", "http", "https"}
        if unknown:
            raise ValueError(f"source_allowed_schemes: unsupported schemes {sorted(unknown)}")
        if self.source_backoff_initial_seconds > self.source_backoff_max_seconds:
            raise ValueError("source_backoff_initial_seconds must not exceed source_backoff_max_seconds")
        return self
