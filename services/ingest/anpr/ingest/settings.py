"""Settings of the ingest service (environment prefix ``ANPR_INGEST_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from anpr.runtime.settings import DatabaseSettings, Port, ServiceSettings


class IngestSettings(ServiceSettings, DatabaseSettings):
    """Everything the ingest service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="ANPR_INGEST_")

    grpc_port: Port = Field(50051, description="gRPC port; 0 picks a free port.")
    metrics_port: Port = Field(9101, description="Prometheus port; 0 picks a free port.")
