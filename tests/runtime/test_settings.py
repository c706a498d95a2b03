"""Settings load once, validate strictly and explain what is wrong in terms of environment variables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from anpr.hotlist.settings import HotlistSettings
from anpr.recognize.settings import RecognizeSettings
from anpr.runtime.errors import ConfigurationError
from anpr.runtime.settings import load_settings
from testkit.probe_service import ProbeSettings


def test_valid_environment_loads(tokens_file: Path) -> None:
    settings = load_settings(
        HotlistSettings,
        environ={"ANPR_HOTLIST_AUTH_TOKENS_FILE": str(tokens_file), "ANPR_HOTLIST_GRPC_PORT": "6000"},
    )
    assert settings.grpc_port == 6000
    assert settings.metrics_port == 9103
    assert settings.database_url is None


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"ANPR_HOTLIST_GRPC_PORT": "70000"}, "ANPR_HOTLIST_GRPC_PORT: Input should be less than or equal to 65535"),
        ({"ANPR_HOTLIST_GRPC_PORT": "fast"}, "ANPR_HOTLIST_GRPC_PORT: Input should be a valid integer"),
        ({"ANPR_HOTLIST_LOG_LEVEL": "LOUD"}, "ANPR_HOTLIST_LOG_LEVEL: Input should be"),
        (
            {"ANPR_HOTLIST_GRPC_PROT": "1"},
            "ANPR_HOTLIST_GRPC_PROT: unknown setting (did you mean ANPR_HOTLIST_GRPC_PORT?)",
        ),
        ({"ANPR_HOTLIST_TLS_CERT_FILE": "/etc/hostname"}, "tls_cert_file and tls_key_file must be set together"),
        ({"ANPR_HOTLIST_DATABASE_POOL_MIN_SIZE": "20"}, "database_pool_min_size must not exceed"),
    ],
)
def test_invalid_settings_name_the_variable(tokens_file: Path, variables: dict[str, str], message: str) -> None:
    environ = {"ANPR_HOTLIST_AUTH_TOKENS_FILE": str(tokens_file), **variables}
    with pytest.raises(ConfigurationError) as error:
        load_settings(HotlistSettings, environ=environ)
    assert message in str(error.value)


def test_missing_tokens_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as error:
        load_settings(ProbeSettings, environ={"ANPR_PROBE_AUTH_TOKENS_FILE": str(tmp_path / "absent.json")})
    assert "auth_tokens_file: no such file" in str(error.value)
    with pytest.raises(ConfigurationError) as error:
        load_settings(ProbeSettings, environ={})
    assert "ANPR_PROBE_AUTH_TOKENS_FILE: required but not set" in str(error.value)


def test_service_exits_2_with_a_readable_message_on_bad_settings(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "anpr.hotlist"],
        env={"PATH": "/usr/bin:/bin", "ANPR_HOTLIST_GRPC_PORT": "-1", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("anpr-hotlist: invalid HotlistSettings settings:")
    assert "ANPR_HOTLIST_GRPC_PORT: Input should be greater than or equal to 0" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_given_mapping_is_parsed_like_the_process_environment(
    tokens_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lists are JSON in a real environment; a given mapping (the manifests' render test) must read them alike."""
    environ = {
        "ANPR_RECOGNIZE_AUTH_TOKENS_FILE": str(tokens_file),
        "ANPR_RECOGNIZE_PROVIDERS": '["CPUExecutionProvider"]',
    }
    from_mapping = load_settings(RecognizeSettings, environ=environ)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    from_process = load_settings(RecognizeSettings)
    assert from_mapping.providers == from_process.providers == ["CPUExecutionProvider"]


def test_a_list_that_is_not_json_is_a_configuration_error(tokens_file: Path) -> None:
    environ = {"ANPR_RECOGNIZE_AUTH_TOKENS_FILE": str(tokens_file), "ANPR_RECOGNIZE_PROVIDERS": "CPUExecutionProvider"}
    with pytest.raises(ConfigurationError) as error:
        load_settings(RecognizeSettings, environ=environ)
    assert '"providers"' in str(error.value)
    assert "JSON" in str(error.value)
