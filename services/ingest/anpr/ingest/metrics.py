"""Prometheus metrics of the ingest service (``anpr_ingest_`` prefix, base units, no plate text or ids as labels).

Most series are this replica's own (sum them over replicas). ``anpr_ingest_cameras`` is the exception: it is read
from PostgreSQL and every replica exports the same fleet-wide numbers (take ``max``; see :mod:`anpr.ingest.liveness`).
``camera_kind`` is the registered kind (fixed, mobile, dash, body), or ``unregistered`` for frames of unknown cameras.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FRAMES_RECEIVED = Counter("anpr_ingest_frames_received_total", "Frames received, by how they arrived.", ("transport",))
FRAMES_ACCEPTED = Counter("anpr_ingest_frames_accepted_total", "Frames accepted for recognition.")
FRAMES_DUPLICATE = Counter("anpr_ingest_frames_duplicate_total", "Frames acknowledged as duplicates.")
FRAMES_REJECTED = Counter("anpr_ingest_frames_rejected_total", "Frames refused or throttled, by reason.", ("reason",))
CAMERA_FRAMES = Counter(
    "anpr_ingest_camera_frames_total",
    "Frames answered, by the kind of camera that sent them and the answer (accepted, duplicate, throttled, rejected).",
    ("camera_kind", "status"),
)
PENDING_FRAMES = Gauge("anpr_ingest_pending_frames", "Frames accepted and waiting for recognition.")
FRAMES_UNRECOGNISED = Counter(
    "anpr_ingest_frames_unrecognised_total",
    "Accepted frames that recognition could not process, by reason.",
    ("reason",),
)
RECOGNITION_SECONDS = Histogram(
    "anpr_ingest_recognition_seconds",
    "Duration of one Recognize call (a batch), retries included.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RECOGNITION_BATCH_SIZE = Histogram(
    "anpr_ingest_recognition_batch_frames", "Frames per Recognize call.", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256)
)
RECOGNITION_RETRIES = Counter(
    "anpr_ingest_recognition_retries_total", "Recognize calls retried (recognize unreachable, overloaded or slow)."
)
JOURNAL_FRAMES = Gauge(
    "anpr_ingest_journal_frames", "Accepted frames held on disk until their plate events are spooled."
)
FRAMES_REPLAYED = Counter("anpr_ingest_frames_replayed_total", "Journaled frames recognised again after a restart.")
OLDEST_PENDING_SECONDS = Gauge(
    "anpr_ingest_oldest_pending_frame_seconds", "Age of the oldest accepted frame not yet through recognition."
)
EVENTS_EMITTED = Counter("anpr_ingest_events_emitted_total", "Plate event revisions emitted, by stage.", ("stage",))
CAPTURE_TO_EVENT_SECONDS = Histogram(
    "anpr_ingest_capture_to_event_seconds",
    "From the capture time of the newest frame of a pass to the emission of the event revision.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300),
)
SPOOL_DEPTH = Gauge("anpr_ingest_spool_depth", "Plate events spooled on disk waiting for the hotlist service.")
EVENTS_DELIVERED = Counter(
    "anpr_ingest_events_delivered_total", "Plate event revisions accepted by the hotlist service."
)
DELIVERY_FAILURES = Counter(
    "anpr_ingest_delivery_failures_total", "Failed ReportReads calls, by status code.", ("grpc_code",)
)
EVENTS_DEAD_LETTERED = Counter(
    "anpr_ingest_events_dead_lettered_total", "Events the hotlist service refused as invalid (kept aside, not retried)."
)
# Counts by kind and state, not one series per camera: camera ids as labels would grow without bound with the
# fleet. Which camera is offline is in ListCameras (connectivity) and in ListSources for pulled streams.
CAMERAS_BY_STATE = Gauge(
    "anpr_ingest_cameras",
    "Enabled cameras of the whole fleet (from PostgreSQL; every replica exports the same value), by kind and state: "
    "online (a frame within the online window), offline (frames before, none since), silent (never sent one).",
    ("camera_kind", "state"),
)
SOURCES_BY_STATE = Gauge("anpr_ingest_sources", "Pulled sources, by state.", ("state",))
SOURCE_RECONNECTS = Counter("anpr_ingest_source_reconnects_total", "Reconnection attempts of pulled sources.")
# The plate event contract (anpr.domain.plate_events) and dead letters: see docs/architecture.md.
PASSES_DISCARDED = Counter(
    "anpr_ingest_passes_discarded_total",
    "Vehicle passes (or revisions) that produced no event, by reason (too_few_reads, not_a_plate, invalid_event).",
    ("reason",),
)
EVENT_FIELDS_DROPPED = Counter(
    "anpr_ingest_event_fields_dropped_total",
    "Parts of plate events dropped before emission because they broke the contract (for example an invalid GPS "
    "fix), by field; the event itself was emitted.",
    ("field",),
)
DEAD_LETTERS = Gauge(
    "anpr_ingest_dead_letters", "Plate events set aside because the hotlist service refused them (any is an alarm)."
)
DEAD_LETTERS_REMOVED = Counter(
    "anpr_ingest_dead_letters_removed_total",
    "Dead letters removed, by how (replayed, purged by an operator, expired by retention).",
    ("how",),
)
STORE_BACKLOG = Gauge(
    "anpr_ingest_store_backlog",
    "Event revisions and delivery marks waiting on disk to be written to PostgreSQL (GetPlateEvents) after a failure.",
)
STORE_WRITE_FAILURES = Counter(
    "anpr_ingest_store_write_failures_total", "Failed writes of plate events or delivery marks to PostgreSQL."
)
