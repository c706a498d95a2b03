"""Every service command answers ``--help`` with its purpose and every setting, needing no setting at all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from anpr.edge.settings import EdgeSettings
from anpr.hotlist.settings import HotlistSettings
from anpr.ingest.settings import IngestSettings
from anpr.recognize.settings import RecognizeSettings

BIN = Path(sys.executable).parent
COMMANDS: list[tuple[list[str], type[BaseSettings], str]] = [
    ([str(BIN / "anpr-ingest")], IngestSettings, "ingest service"),
    ([str(BIN / "anpr-recognize")], RecognizeSettings, "recognize service"),
    ([str(BIN / "anpr-hotlist")], HotlistSettings, "hotlist service"),
    ([str(BIN / "anpr-edge")], EdgeSettings, "edge agent"),
    ([sys.executable, "-m", "anpr.ingest"], IngestSettings, "ingest service"),
    ([sys.executable, "-m", "anpr.recognize"], RecognizeSettings, "recognize service"),
    ([sys.executable, "-m", "anpr.hotlist"], HotlistSettings, "hotlist service"),
]


def _run(command: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    # An empty environment: no setting, no data directory, nothing inherited from the test run.
    return subprocess.run([*command, *args], env={}, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(("command", "settings_class", "purpose"), COMMANDS, ids=lambda v: str(v)[-30:])
def test_help_lists_every_setting_without_any_set(
    command: list[str], settings_class: type[BaseSettings], purpose: str
) -> None:
    result = _run(command, "--help")
    assert result.returncode == 0, result.stderr
    assert purpose in result.stdout
    prefix = str(settings_class.model_config["env_prefix"])
    for name, field in settings_class.model_fields.items():
        assert f"{name} ({prefix}{name.upper()})" in result.stdout
        assert field.description
        assert field.description.split()[0] in result.stdout
    assert "type: int; default: " in result.stdout or "type: float; default: " in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [COMMANDS[0][0], COMMANDS[3][0], COMMANDS[6][0]], ids=["ingest", "edge", "-m"])
def test_unknown_arguments_are_a_usage_error(command: list[str]) -> None:
    result = _run(command, "--no-such-option")
    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert "unrecognized arguments" in result.stderr
    assert "Traceback" not in result.stderr
