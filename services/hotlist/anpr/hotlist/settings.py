"""Settings of the hotlist service (environment prefix ``ANPR_HOTLIST_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from anpr.runtime.settings import DatabaseSettings, Port, ServiceSettings


class HotlistSettings(ServiceSettings, DatabaseSettings):
    """Everything the hotlist service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="ANPR_HOTLIST_")

    grpc_port: Port = Field(50053, description="gRPC port; 0 picks a free port.")
    metrics_port: Port = Field(9103, description="Prometheus port; 0 picks a free port.")
