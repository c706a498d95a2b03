"""Edge agent settings: required values, misspelt variables and bad files are refused with readable messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from anpr.edge import main as edge_main
from anpr.edge.settings import EdgeSettings
from anpr.runtime.errors import ConfigurationError
from anpr.runtime.settings import load_settings
from anpr.runtime.tls import ClientTls
from testkit.certificates import make_certificates


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


def test_plaintext_to_a_remote_ingest_is_refused_unless_allowed(tmp_path: Path) -> None:
    environ = {
        "ANPR_EDGE_CAMERA_ID": "unit-7",
        "ANPR_EDGE_VIDEO_SOURCE": "0",
        "ANPR_EDGE_INGEST_TARGET": "dns:///ingest.example.org:443",
    }
    with pytest.raises(ConfigurationError, match="is not on loopback and TLS is off"):
        load_settings(EdgeSettings, environ=environ)
    assert load_settings(EdgeSettings, environ={**environ, "ANPR_EDGE_ALLOW_PLAINTEXT": "true"}).tls is None
    certificates = tmp_path / "tls"
    certificates.mkdir()
    made = make_certificates(certificates)
    secured = load_settings(
        EdgeSettings,
        environ={
            **environ,
            "ANPR_EDGE_TLS_CA_FILE": str(made.ca),
            "ANPR_EDGE_TLS_CERT_FILE": str(made.client_cert),
            "ANPR_EDGE_TLS_KEY_FILE": str(made.client_key),
            "ANPR_EDGE_TLS_SERVER_NAME": "ingest.example.org",
        },
    )
    assert secured.tls == ClientTls(made.ca, made.client_cert, made.client_key, "ingest.example.org")
