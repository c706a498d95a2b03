"""Fixtures of the monitoring tests (the ingest-side environment, shared through testkit)."""

from testkit.ingest_fixtures import env, scene_models

__all__ = ["env", "scene_models"]
