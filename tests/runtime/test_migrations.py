"""Migrations: applied once, in order, under a lock; edited files are refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from anpr.runtime.errors import ConfigurationError
from anpr.runtime.migrations import apply_migrations, discover


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return directory


async def test_running_twice_applies_once(database_url: str, tmp_path: Path) -> None:
    directory = _write(
        tmp_path / "m",
        {
            "0001_things.sql": "CREATE TABLE things (id integer PRIMARY KEY);",
            "0002_more.sql": "ALTER TABLE things ADD COLUMN label text NOT NULL DEFAULT '';",
        },
    )
    connection = await asyncpg.connect(database_url)
    try:
        assert await apply_migrations(connection, "demo", discover(directory)) == [1, 2]
        assert await apply_migrations(connection, "demo", discover(directory)) == []
        await connection.execute("INSERT INTO demo.things (id, label) VALUES (1, 'x')")
        _write(directory, {"0003_index.sql": "CREATE INDEX things_label ON things (label);"})
        assert await apply_migrations(connection, "demo", discover(directory)) == [3]
        assert await connection.fetchval("SELECT count(*) FROM demo.schema_migrations") == 3
    finally:
        await connection.close()


async def test_concurrent_starts_apply_each_migration_once(database_url: str, tmp_path: Path) -> None:
    directory = _write(tmp_path / "m", {"0001_slow.sql": "SELECT pg_sleep(0.3); CREATE TABLE once (id integer);"})
    connections = [await asyncpg.connect(database_url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(apply_migrations(c, "race", discover(directory)) for c in connections))
        assert sorted(len(applied) for applied in results) == [0, 0, 1]
    finally:
        for connection in connections:
            await connection.close()


async def test_edited_migration_is_refused(database_url: str, tmp_path: Path) -> None:
    directory = _write(tmp_path / "m", {"0001_a.sql": "CREATE TABLE a (id integer);"})
    connection = await asyncpg.connect(database_url)
    try:
        await apply_migrations(connection, "edited", discover(directory))
        _write(directory, {"0001_a.sql": "CREATE TABLE a (id bigint);"})
        with pytest.raises(ConfigurationError, match="changed after it was applied"):
            await apply_migrations(connection, "edited", discover(directory))
    finally:
        await connection.close()


async def test_failed_migration_leaves_nothing_behind(database_url: str, tmp_path: Path) -> None:
    directory = _write(tmp_path / "m", {"0001_bad.sql": "CREATE TABLE half (id integer); SELECT no_such_function();"})
    connection = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await apply_migrations(connection, "failing", discover(directory))
        assert await connection.fetchval("SELECT to_regclass('failing.half')") is None
        assert await connection.fetchval("SELECT count(*) FROM failing.schema_migrations") == 0
    finally:
        await connection.close()


def test_badly_named_files_are_refused(tmp_path: Path) -> None:
    directory = _write(tmp_path / "m", {"1_init.sql": "SELECT 1;"})
    with pytest.raises(ConfigurationError, match=r"NNNN_description\.sql"):
        discover(directory)
