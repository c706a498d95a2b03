"""Settings of the hotlist service (environment prefix ``ANPR_HOTLIST_``).

Lists are given as JSON in the environment, for example
``ANPR_HOTLIST_CONFUSION_CLASSES='["0ODQ", "1IL", "2Z", "5S", "8B", "6G"]'``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from anpr.runtime.settings import DatabaseSettings, Port, ServiceSettings

DEFAULT_CONFUSION_CLASSES = ("0ODQ", "1IL", "2Z", "5S", "8B", "6G")


class HotlistSettings(ServiceSettings, DatabaseSettings):
    """Everything the hotlist service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="ANPR_HOTLIST_")

    grpc_port: Port = Field(50053, description="gRPC port; 0 picks a free port.")
    metrics_port: Port = Field(9103, description="Prometheus port; 0 picks a free port.")

    # Matching.
    confusion_classes: tuple[str, ...] = Field(
        DEFAULT_CONFUSION_CLASSES,
        max_length=20,
        description="Groups of characters an OCR engine confuses (A-Z, 0-9); each character in at most one group.",
    )
    edit_distance_min_length_1: int = Field(
        6, ge=2, le=11, description="Plates at least this long match within edit distance 1 (11 disables)."
    )
    edit_distance_min_length_2: int = Field(
        11, ge=2, le=11, description="Plates at least this long match within edit distance 2 (11 disables)."
    )
    partial_min_visible: int = Field(
        5,
        ge=0,
        le=10,
        description="A partial read (characters hidden from the reader) with at least this many visible characters "
        "is also matched with its hidden runs as gaps (0 disables).",
    )
    partial_max_gap: int = Field(4, ge=1, le=8, description="Most characters one hidden run may stand for.")
    partial_max_alerting: int = Field(
        1,
        ge=0,
        le=100,
        description="A partial read whose visible characters fit more entries than this points at no one vehicle: "
        "its gap matches are weak hits (never alerts); 0 makes every gap match weak.",
    )
    default_strictness: Literal["exact", "standard", "lenient"] = Field(
        "standard", description="Strictness of lists that do not state their own."
    )
    max_hits: int = Field(50, ge=1, le=1000, description="Most hits a Match call returns when it asks for no limit.")

    # Alerts.
    alert_suppression_window_seconds: float = Field(
        300.0, ge=0, le=7 * 86400, description="Repeat hits for a plate and list within this window are suppressed."
    )
    subscriber_queue_size: int = Field(
        1000, ge=10, le=100_000, description="Alerts buffered per subscriber before a slow one is cut off."
    )
    subscriber_heartbeat_seconds: float = Field(
        10.0, gt=0, le=300, description="A subscription with nothing to send gets a heartbeat this often."
    )
    replay_page_size: int = Field(500, ge=1, le=10_000, description="Alerts read per query while replaying.")

    # Batches and sizes.
    max_report_batch: int = Field(500, ge=1, le=10_000, description="Most plate events in one ReportReads call.")
    max_upsert_batch: int = Field(1000, ge=1, le=100_000, description="Most entries in one UpsertEntries call.")
    max_import_rows: int = Field(
        1_000_000,
        ge=1,
        le=1_000_000,
        description="Most rows one ImportEntries stream may send. Every replica holds every entry in memory (about "
        "0.9 GB per million entries measured, issue 19), against deploy/k8s/hotlist.yaml's 2 GiB limit: raise the "
        "limit in the manifest before allowing larger lists.",
    )
    max_concurrent_imports: int = Field(
        2,
        ge=1,
        le=64,
        description="ImportEntries streams running at once per replica; one more is refused (RESOURCE_EXHAUSTED). "
        "A running import holds a database connection only while it writes, after its stream has ended.",
    )
    max_import_errors: int = Field(1000, ge=0, le=100_000, description="Row errors listed in an import response.")
    max_plate_crop_bytes: int = Field(
        512 * 1024, ge=0, le=8 * 1024 * 1024, description="Largest plate crop stored with a read, in bytes."
    )
    max_page_size: int = Field(1000, ge=1, le=10_000, description="Largest page of any list or search call.")
    default_page_size: int = Field(100, ge=1, le=10_000, description="Page size when a request asks for none.")

    # Index consistency.
    index_poll_seconds: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="How often each replica re-checks list revisions, should a notification be lost.",
    )

    # Retention (POPIA).
    retention_reads_without_hits_days: float = Field(
        30.0, gt=0, le=3650, description="Reads that raised no alert are deleted this many days after they were taken."
    )
    retention_reads_with_hits_days: float = Field(
        365.0,
        gt=0,
        le=3650,
        description="Reads that raised alerts, and their alerts, are deleted after this many days.",
    )
    retention_interval_seconds: float = Field(
        3600.0, gt=0, le=86400, description="How often the retention job runs (one replica at a time)."
    )
    retention_batch_size: int = Field(5000, ge=1, le=1_000_000, description="Rows deleted per retention statement.")

    @model_validator(mode="after")
    def _check_matching(self) -> HotlistSettings:
        seen: set[str] = set()
        for group in self.confusion_classes:
            if len(group) < 2 or not all(c.isascii() and c.isalnum() and not c.islower() for c in group):
                raise ValueError(f"confusion class {group!r}: two or more characters from A-Z and 0-9")
            if seen & set(group):
                raise ValueError(f"confusion class {group!r} repeats a character of another class")
            seen |= set(group)
        if self.edit_distance_min_length_2 < self.edit_distance_min_length_1:
            raise ValueError("edit_distance_min_length_2 must not be below edit_distance_min_length_1")
        if self.retention_reads_with_hits_days < self.retention_reads_without_hits_days:
            raise ValueError("reads with hits must be kept at least as long as reads without")
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size must not exceed max_page_size")
        return self
