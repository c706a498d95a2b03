"""Ingest service: cameras, frames pushed and pulled, vehicle-pass tracking, durable delivery of plate events."""
