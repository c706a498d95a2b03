"""Hotlist service: hotlists and their entries, matching plate reads, alerts, stored reads, search audit."""
