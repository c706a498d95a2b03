"""Prometheus metrics of the edge agent (``anpr_edge_`` prefix, base units, no plate text or frame ids)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

FRAMES_CAPTURED = Counter("anpr_edge_frames_captured_total", "Frames sampled from the camera and buffered.")
FRAMES_SENT = Counter("anpr_edge_frames_sent_total", "Frames written to the PushFrames stream (resends included).")
FRAMES_ACKED = Counter("anpr_edge_frames_acknowledged_total", "Acknowledgements from ingest, by status.", ("status",))
FRAMES_EVICTED = Counter(
    "anpr_edge_frames_evicted_total", "Buffered frames dropped, oldest first, because the buffer reached its cap."
)
BUFFER_FRAMES = Gauge("anpr_edge_buffer_frames", "Frames buffered on disk waiting to be sent.")
BUFFER_BYTES = Gauge("anpr_edge_buffer_bytes", "Bytes of frames buffered on disk.")
LINK_UP = Gauge("anpr_edge_link_up", "1 while the PushFrames stream to ingest is open, else 0.")
CAMERA_UP = Gauge("anpr_edge_camera_up", "1 while the local camera delivers frames, else 0.")
GPS_FIX = Gauge("anpr_edge_gps_fix", "1 while a recent GPS fix is available, else 0.")
