"""The built wheel carries every part of the namespace package, the generated contracts and the package data."""

from __future__ import annotations

import zipfile
from pathlib import Path

REPO = Path(__file__).parents[2]


def test_wheel_contains_services_contracts_and_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("cli/main.py", "runtime/server.py", "ingest/server.py", "recognize/server.py", "hotlist/server.py"):
        assert f"anpr/{module}" in names
    for service in ("ingest", "recognize", "hotlist"):
        assert f"anpr/api/{service}/v1/{service}_service_pb2_grpc.py" in names
    migrations = REPO.glob("services/*/anpr/*/migrations/*.sql")
    for path in migrations:
        assert f"anpr/{path.parent.parent.name}/migrations/{path.name}" in names
    assert not any(name.startswith(("tests/", "anpr/__init__.py")) for name in names)
