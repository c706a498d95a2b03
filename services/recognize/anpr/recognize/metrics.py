"""Prometheus metrics of the recognize service (batch size and queue depth live with the batch queue)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

STAGE_SECONDS = Histogram(
    "anpr_recognize_stage_seconds",
    "Time an image spent in a stage (decode; detect, refine and read include waiting for the batch).",
    ("stage",),
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
IMAGES = Counter("anpr_recognize_images_total", "Images received, by RPC.", ("rpc",))
IMAGES_REJECTED = Counter("anpr_recognize_images_rejected_total", "Images refused or failed, by reason.", ("reason",))
PLATES_FOUND = Counter("anpr_recognize_plates_found_total", "Plates detected and read.")
MODEL_RELOADS = Counter("anpr_recognize_model_reloads_total", "Model reload attempts, by outcome.", ("outcome",))
MODEL_INFO = Gauge(
    "anpr_recognize_model_info",
    "1 for the model set serving new requests, labelled with its name, version and execution provider.",
    ("model", "version", "provider"),
)


def record_model(name: str, version: str, provider: str) -> None:
    """Mark the model set now serving; earlier sets disappear so dashboards show only the current one."""
    MODEL_INFO.clear()
    MODEL_INFO.labels(name, version, provider).set(1)
