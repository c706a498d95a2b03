"""Validated settings shared by every service.

Each service defines one settings class (a subclass of :class:`ServiceSettings`, plus :class:`DatabaseSettings`
where it owns tables) with its own environment prefix, loads it once in ``main`` with :func:`load_settings` and
passes it down. Invalid or misspelt settings stop the process before anything starts, with a message that names
the environment variable.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import platformdirs
from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict, SettingsError
from pydantic_settings.sources.utils import parse_env_vars

from anpr.runtime.errors import ConfigurationError
from anpr.runtime.tls import is_loopback_host

Port = Annotated[int, Field(ge=0, le=65535)]

DEFAULT_DATA_DIR = platformdirs.user_data_path("anpr-suite")


class ServiceSettings(BaseSettings):
    """Settings every gRPC service has: where it listens, how it authenticates, logs and shuts down."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True, validate_default=True)

    grpc_host: str = Field("127.0.0.1", description="Address the gRPC server binds; 0.0.0.0 or [::] in containers.")
    grpc_port: Port = Field(description="gRPC port; 0 picks a free port (see ready_file).")
    metrics_host: str = Field("127.0.0.1", description="Address of the Prometheus HTTP endpoint.")
    metrics_port: Port = Field(description="Port of the Prometheus HTTP endpoint; 0 picks a free port.")
    auth_tokens_file: Path = Field(
        description="JSON file mapping bearer tokens (or their SHA-256) to a client identity and roles."
    )
    tls_cert_file: Path | None = Field(None, description="PEM server certificate; with tls_key_file enables TLS.")
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file.")
    tls_client_ca_file: Path | None = Field(
        None, description="PEM CA bundle; when set, clients must present a certificate it signed (mutual TLS)."
    )
    allow_plaintext: bool = Field(
        False,
        description="Serve plaintext gRPC on a non-loopback grpc_host (without it, such a service refuses to start "
        "unless TLS is configured); only behind a TLS-terminating proxy or mesh.",
    )
    health_port: Port | None = Field(
        None,
        description="When set, a second, plaintext listener on grpc_host that serves only grpc.health.v1 "
        "(Kubernetes gRPC probes cannot speak TLS); 0 picks a free port.",
    )
    page_token_key_file: Path | None = Field(
        None,
        description="File holding the secret (at least 32 bytes) that signs page tokens; give every replica of the "
        "service the same one (a Kubernetes Secret) so a listing can go on at any replica. Unset: a key per "
        "process, and a page token is honoured only by the replica that issued it.",
    )
    shutdown_grace_seconds: float = Field(
        10.0, gt=0, le=300, description="How long in-flight calls may finish after SIGTERM; keep below the pod's grace."
    )
    max_message_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024, description="Largest gRPC message accepted, in bytes."
    )
    max_streams_per_principal: int = Field(
        100,
        ge=1,
        le=100_000,
        description="Streaming calls one client identity may have open at once; one more is refused "
        "(RESOURCE_EXHAUSTED). Counts every kind of stream, alert subscriptions included.",
    )
    stream_idle_timeout_seconds: float = Field(
        120.0,
        gt=0,
        le=86_400,
        description="A call whose client streams requests (PushFrames, StreamRecognize, ImportEntries) ends with "
        "DEADLINE_EXCEEDED when the client sends nothing for this long; server streams are not timed out.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Root log level.")
    log_format: Literal["json", "text"] = Field("json", description="json for production, text for a terminal.")
    ready_file: Path | None = Field(
        None, description="When set, the bound addresses are written here as JSON once the service is serving."
    )
    otlp_endpoint: str = Field(
        "",
        description="OpenTelemetry collector to export trace spans to over OTLP/gRPC, e.g. http://otel-collector:4317 "
        "(https:// for TLS; OTEL_EXPORTER_OTLP_* variables tune the exporter). Empty: tracing off (no spans, no "
        "traceparent forwarded; request ids are forwarded either way).",
    )
    trace_sample_ratio: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Share of new traces (in ingest: of frames) recorded when tracing is on; a call that arrives "
        "with a sampled traceparent is always recorded.",
    )

    @model_validator(mode="after")
    def _check_files(self) -> ServiceSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file must be set together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file needs tls_cert_file and tls_key_file")
        for name in ("auth_tokens_file", "tls_cert_file", "tls_key_file", "tls_client_ca_file", "page_token_key_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: no such file: {path}")
        if self.tls_cert_file is None and not self.allow_plaintext and not is_loopback_host(self.grpc_host):
            raise ValueError(
                f"grpc_host {self.grpc_host} is not a loopback address and TLS is off: set tls_cert_file and "
                "tls_key_file, or allow_plaintext=true to serve plaintext deliberately (behind a TLS-terminating "
                "proxy or mesh)"
            )
        return self


class DatabaseSettings(BaseSettings):
    """Settings of a service that keeps its state in PostgreSQL."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    database_url: SecretStr | None = Field(
        None, description="postgresql:// URL; when empty an embedded PostgreSQL starts in embedded_database_dir."
    )
    migration_database_url: SecretStr | None = Field(
        None,
        description="postgresql:// URL of the role that owns the service's schema: migrations run over it, then it "
        "grants database_url's role only what the service needs (no ownership, no UPDATE/DELETE/TRUNCATE of the "
        "audit log). Unset: database_url's role migrates and owns the schema (a warning at start).",
    )
    embedded_database_dir: Path = Field(
        DEFAULT_DATA_DIR / "postgres", description="Data directory of the embedded PostgreSQL."
    )
    database_pool_min_size: int = Field(1, ge=0, le=100, description="Connections kept open.")
    database_pool_max_size: int = Field(10, ge=1, le=500, description="Most connections open at once.")
    database_command_timeout_seconds: float = Field(30.0, gt=0, description="Per-statement timeout.")

    @model_validator(mode="after")
    def _check_pool(self) -> DatabaseSettings:
        if self.database_pool_min_size > self.database_pool_max_size:
            raise ValueError("database_pool_min_size must not exceed database_pool_max_size")
        if self.migration_database_url is not None and self.database_url is None:
            # The embedded database makes its own owner and runtime roles; an owner URL only pairs with a runtime one.
            raise ValueError("migration_database_url needs database_url (the runtime role's URL)")
        return self


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load_settings(cls: type[SettingsT], environ: dict[str, str] | None = None, **overrides: Any) -> SettingsT:
    """Load ``cls`` from the environment (plus explicit overrides), or raise :class:`ConfigurationError`.

    Besides pydantic's validation, environment variables that carry the service prefix but name no setting are
    rejected, because a misspelt variable otherwise silently leaves a default in force.
    """
    env = dict(os.environ if environ is None else environ)
    prefix = str(cls.model_config.get("env_prefix", "")).upper()
    known = {prefix + name.upper() for name in cls.model_fields}
    problems: list[str] = []
    if prefix:
        for key in sorted(env):
            if key.upper().startswith(prefix) and key.upper() not in known:
                hint = difflib.get_close_matches(key.upper(), known, n=1)
                problems.append(f"{key}: unknown setting" + (f" (did you mean {hint[0]}?)" if hint else ""))
    if not problems:
        try:
            if environ is None:
                return cls(**overrides)
            return _from_mapping(cls, env, prefix, overrides)
        except ValidationError as exc:
            problems.extend(_describe(error, prefix) for error in exc.errors())
        except SettingsError as exc:  # a list or other complex value that is not JSON
            problems.append(f'{exc} (write lists as JSON, e.g. \'["a", "b"]\')')
    raise ConfigurationError(f"invalid {cls.__name__} settings:\n  " + "\n  ".join(problems))


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' own environment source reading a given mapping instead of ``os.environ``, so values are
    parsed exactly as in a real environment (JSON for lists and other complex fields)."""

    def __init__(self, settings_cls: type[BaseSettings], mapping: Mapping[str, str]) -> None:
        self._mapping = mapping  # read by _load_env_vars, which the base class calls from its __init__
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._mapping, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


def _from_mapping(cls: type[SettingsT], env: dict[str, str], prefix: str, overrides: dict[str, Any]) -> SettingsT:
    values: dict[str, Any] = _MappingSource(cls, env)()
    values.update(overrides)
    # Only explicit values: bypass reading os.environ so a given mapping is the whole truth.
    return cls.model_validate(values)


def _describe(error: Any, prefix: str) -> str:
    location = ".".join(str(part) for part in error.get("loc", ()))
    variable = f"{prefix}{location.upper()}" if location else prefix.rstrip("_")
    given = error.get("input")
    shown = "" if isinstance(given, dict) or given is None else f" (got {str(given)[:80]!r})"
    message = str(error.get("msg", "invalid"))
    if error.get("type") == "missing":
        message = "required but not set"
    return f"{variable}: {message}{shown}"
