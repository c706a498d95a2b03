"""Prometheus metrics of the hotlist service (``anpr_hotlist_*``, base units; never plate text or ids as labels)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MATCH_SECONDS = Histogram(
    "anpr_hotlist_match_seconds",
    "Time to match one reading (with its alternatives) against the in-memory index.",
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05),
)
HITS = Counter("anpr_hotlist_hits_total", "Hits found by matching, by kind of match.", ("kind",))
INDEX_ENTRIES = Gauge("anpr_hotlist_index_entries", "Entries held by this replica's match index.")
INDEX_SYNCS = Counter("anpr_hotlist_index_syncs_total", "Index refreshes of one list, by how.", ("mode",))
INDEX_SYNC_SECONDS = Histogram(
    "anpr_hotlist_index_sync_seconds", "Time to bring one list of the index up to date.", ("mode",)
)
IMPORT_ROWS = Counter("anpr_hotlist_import_rows_total", "Rows of entry imports, by outcome.", ("outcome",))
IMPORTS_REFUSED = Counter(
    "anpr_hotlist_imports_refused_total", "ImportEntries streams refused because the most allowed were running."
)
READS = Counter("anpr_hotlist_reads_total", "Plate events reported, by what was done with them.", ("status",))
EVENT_FIELDS_DROPPED = Counter(
    "anpr_hotlist_event_fields_dropped_total",
    "Parts of reported events dropped because they broke the plate event contract (the event was kept), by field.",
    ("field",),
)
ALERTS_RAISED = Counter("anpr_hotlist_alerts_raised_total", "Alerts raised.")
ALERTS_SUPPRESSED = Counter(
    "anpr_hotlist_alerts_suppressed_total", "Repeat hits suppressed into an open alert for the same plate and list."
)
ALERTS_ACKNOWLEDGED = Counter(
    "anpr_hotlist_alerts_acknowledged_total", "Alert verdicts recorded, by outcome.", ("outcome",)
)
# Read from PostgreSQL every ~10 s by every replica (the same fleet-wide value on each: take max over replicas).
OPEN_ALERTS = Gauge(
    "anpr_hotlist_open_alerts",
    "Alerts raised and not yet acknowledged, in the whole database (every replica exports the same value).",
)
SUBSCRIBERS = Gauge("anpr_hotlist_subscribers", "Alert subscriptions open on this replica (sum over replicas).")
CAPTURE_TO_ALERT_SECONDS = Histogram(
    "anpr_hotlist_capture_to_alert_seconds",
    "From the capture time of the newest frame of a read to the commit of the alert it raised.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300),
)
SUBSCRIBERS_CUT_OFF = Counter(
    "anpr_hotlist_subscribers_cut_off_total", "Subscriptions ended because the subscriber fell too far behind."
)
SEARCHES = Counter("anpr_hotlist_searches_total", "Audited searches of stored reads.")
RETENTION_DELETED = Counter(
    "anpr_hotlist_retention_deleted_total", "Rows deleted by the retention job, by kind.", ("kind",)
)
RETENTION_RUN_SECONDS = Histogram("anpr_hotlist_retention_run_seconds", "Duration of retention job runs.")
