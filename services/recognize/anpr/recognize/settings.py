"""Settings of the recognize service (environment prefix ``ANPR_RECOGNIZE_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from anpr.runtime.settings import Port, ServiceSettings


class RecognizeSettings(ServiceSettings):
    """Everything the recognize service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="ANPR_RECOGNIZE_")

    grpc_port: Port = Field(50052, description="gRPC port; 0 picks a free port.")
    metrics_port: Port = Field(9102, description="Prometheus port; 0 picks a free port.")
