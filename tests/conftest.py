"""Shared fixtures: development tokens, a real PostgreSQL, and settings for in-process services.

PostgreSQL: ``ANPR_TEST_DATABASE_URL`` when set (CI points it at the local server), otherwise an embedded server
started once for the session. Each test that needs tables gets a fresh database of its own.
"""

from __future__ import annotations

import importlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from anpr.runtime.auth import Role
from anpr.runtime.database import EmbeddedPostgres
from anpr.runtime.server import ServiceServer
from anpr.runtime.settings import load_settings
from testkit.plate_models import build_constant_reader, build_content_detector, write_manifest
from testkit.services import StartService


@pytest.fixture(scope="session")
def tokens() -> dict[str, str]:
    """One token per role (the key is the role name) plus ``nobody``, which is absent from the file."""
    values = {role.value: f"test-token-{role.value}-{uuid.uuid4().hex}" for role in Role}
    values["nobody"] = f"test-token-unknown-{uuid.uuid4().hex}"
    return values


@pytest.fixture(scope="session")
def tokens_file(tmp_path_factory: pytest.TempPathFactory, tokens: dict[str, str]) -> Path:
    """A secrets file holding every role's token (stored as plain tokens, as in development)."""
    path = tmp_path_factory.mktemp("secrets") / "tokens.json"
    clients = [{"identity": f"test-{role.value}", "roles": [role.value], "token": tokens[role.value]} for role in Role]
    path.write_text(json.dumps({"clients": clients}))
    return path


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a PostgreSQL server the tests may create databases on."""
    configured = os.environ.get("ANPR_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("embedded-pg"))
    try:
        yield embedded.start()
    finally:
        embedded.stop()


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture
async def database_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"anpr_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield with_database(postgres_server_url, name)
    finally:
        admin = await asyncpg.connect(postgres_server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
def service_environment(tokens_file: Path) -> dict[str, str]:
    """Settings shared by every in-process service in tests: loopback, free ports, test tokens."""
    return {
        "grpc_host": "127.0.0.1",
        "grpc_port": "0",
        "metrics_host": "127.0.0.1",
        "metrics_port": "0",
        "auth_tokens_file": str(tokens_file),
        "shutdown_grace_seconds": "5",
        "log_format": "text",
    }


SERVICE_MODULES = {"ingest": "anpr.ingest", "recognize": "anpr.recognize", "hotlist": "anpr.hotlist"}
DATABASE_SERVICES = frozenset({"ingest", "hotlist"})


@pytest.fixture(scope="session")
def test_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small, deterministic model set: the content-box detector and a reader that always reads CA123456."""
    directory = tmp_path_factory.mktemp("models")
    reader = build_constant_reader(directory / "reader.onnx", "CA123456")
    detector = build_content_detector(directory / "detector.onnx")
    write_manifest(directory, detector=detector, reader=reader, config=reader.with_suffix(".yaml"))
    return directory


@pytest.fixture
async def start_service(
    request: pytest.FixtureRequest, service_environment: dict[str, str], test_model_dir: Path
) -> AsyncIterator[StartService]:
    """Start a real service in this process on a free loopback port; stopped (and its resources closed) after."""
    async with AsyncExitStack() as stacks:

        async def start(name: str, **overrides: Any) -> ServiceServer:
            package = SERVICE_MODULES[name]
            settings_class = getattr(importlib.import_module(f"{package}.settings"), f"{name.capitalize()}Settings")
            build = importlib.import_module(f"{package}.server").build
            values: dict[str, Any] = {**service_environment, **overrides}
            if name in DATABASE_SERVICES and "database_url" not in values:
                # Only database services need the (possibly embedded) server.
                values["database_url"] = request.getfixturevalue("postgres_server_url")
            if name == "recognize":
                values.setdefault("model_dir", str(test_model_dir))
                values.setdefault("model_poll_seconds", "0")
            settings = load_settings(settings_class, environ={}, **values)
            server: ServiceServer = await stacks.enter_async_context(build(settings))
            stacks.push_async_callback(server.stop, 1.0)
            await server.start()
            return server

        yield start
