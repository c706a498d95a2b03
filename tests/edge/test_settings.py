"""Edge agent settings: required values, misspelt variables and bad files are refused with readable messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from anpr.edge import main as edge_main
from anpr.edge.settings import EdgeSettings
from anpr.runtime.errors import ConfigurationError
from anpr.runtime.settings import load_settings


def test_required_settings_are_named() -> None:
    with pytest.raises(ConfigurationError) as error:
        load_settings(EdgeSettings, environ={})
    assert "ANPR_EDGE_CAMERA_ID: required but not set" in str(error.value)
    assert "ANPR_EDGE_VIDEO_SOURCE: required but not set" in str(error.value)


def test_misspelt_variable_and_missing_token_file(tmp_path: Path) -> None:
    environ = {"ANPR_EDGE_CAMERA_ID": "unit-7", "ANPR_EDGE_VIDEO_SOURCE": "0", "ANPR_EDGE_TARGET_FSP": "5"}
    with pytest.raises(ConfigurationError, match="did you mean ANPR_EDGE_TARGET_FPS"):
        load_settings(EdgeSettings, environ=environ)
    environ = {"ANPR_EDGE_CAMERA_ID": "unit-7", "ANPR_EDGE_VIDEO_SOURCE": "0"}
    with pytest.raises(ConfigurationError, match="no such file"):
        load_settings(EdgeSettings, environ={**environ, "ANPR_EDGE_TOKEN_FILE": str(tmp_path / "missing")})


def test_console_script_exits_2_on_bad_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANPR_EDGE_CAMERA_ID", raising=False)
    monkeypatch.setenv("ANPR_EDGE_VIDEO_SOURCE", "0")
    with pytest.raises(SystemExit) as exit_info:
        edge_main.main()
    assert exit_info.value.code == edge_main.EXIT_CONFIGURATION
