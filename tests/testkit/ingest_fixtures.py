"""Fixture shared by the ingest and edge tests: the real hotlist and recognize services around an ingest service.

Imported by the conftest of each test directory that uses it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from anpr.runtime.server import ServiceServer
from testkit.ingest_env import IngestEnvironment
from testkit.scenes import scene_model_dir
from testkit.services import StartService


@pytest.fixture(scope="session")
def scene_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scene model set: the white-plate band detector and the project's shipped reader."""
    return scene_model_dir(tmp_path_factory.mktemp("scene-models"))


@pytest.fixture
async def env(
    database_url: str,  # first: the database must outlive the services started on it
    start_service: StartService,
    service_environment: dict[str, str],
    tokens: dict[str, str],
    scene_models: Path,
    tmp_path: Path,
) -> IngestEnvironment:
    """Settings for ingest around the real hotlist (on the test's database) and recognize services.

    The two services start with the first ingest service of the test (or ``env.start_dependencies()``): a test
    that never starts ingest (an edge agent with no link) does not pay for them.
    """

    async def on_database(name: str, **overrides: Any) -> ServiceServer:
        return await start_service(name, database_url=database_url, **overrides)

    token_file = tmp_path / "service-token"
    token_file.write_text(tokens["ingest-service"])
    return IngestEnvironment(
        start_service=on_database,
        start_recognize_service=start_service,
        model_dir=scene_models,
        database_url=database_url,
        tokens=tokens,
        spool_path=tmp_path / "spool.sqlite3",
        service_token_file=token_file,
        base_settings={**service_environment, "database_url": database_url},
    )
