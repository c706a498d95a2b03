"""Fixtures of these tests (shared with the other ingest-side tests through testkit)."""

from testkit.ingest_fixtures import env, scene_models

__all__ = ["env", "scene_models"]
