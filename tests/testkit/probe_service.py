"""A tiny service on the shared runtime, for testing the runtime itself.

``test.Probe/Sleep`` sleeps for the seconds given as its (raw bytes) request; ``test.Probe/Fail`` raises the
domain exception named in its request. Run as a script it serves until SIGTERM, like a real service.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import grpc.aio
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from anpr.runtime import errors
from anpr.runtime.auth import AccessPolicy, Role, roles
from anpr.runtime.context import current_principal, current_request_id
from anpr.runtime.entrypoint import run_service
from anpr.runtime.server import ServiceServer
from anpr.runtime.settings import Port, ServiceSettings

SERVICE = "test.Probe"
POLICY: AccessPolicy = {
    f"/{SERVICE}/Sleep": roles(Role.OPERATOR),
    f"/{SERVICE}/Fail": roles(Role.OPERATOR),
    f"/{SERVICE}/WhoAmI": roles(Role.OPERATOR, Role.AUDITOR),
}


class ProbeSettings(ServiceSettings):
    """Settings of the probe (prefix ANPR_PROBE_)."""

    model_config = SettingsConfigDict(env_prefix="ANPR_PROBE_")
    grpc_port: Port = Field(0)
    metrics_port: Port = Field(0)


async def _sleep(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    await asyncio.sleep(float(request.decode() or "0"))
    return b"slept"


async def _fail(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    name = request.decode()
    if name == "crash":
        raise RuntimeError("an unexpected bug")
    raise getattr(errors, name)(f"probe raised {name}")


async def _who_am_i(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    principal = current_principal()
    identity = principal.identity if principal else "-"
    return f"{identity} {current_request_id()}".encode()


def _identity(data: bytes) -> bytes:
    return data


def register(_: object, server: grpc.aio.Server) -> None:
    """Add the probe's methods to a server."""
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            function, request_deserializer=_identity, response_serializer=_identity
        )
        for name, function in {"Sleep": _sleep, "Fail": _fail, "WhoAmI": _who_am_i}.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


def make_server(settings: ProbeSettings) -> ServiceServer:
    """The probe's server, not yet started."""
    server = ServiceServer("probe", settings, POLICY)
    server.add(None, register, SERVICE)
    return server


async def _serve(settings: ProbeSettings) -> None:
    await make_server(settings).run()


if __name__ == "__main__":
    run_service("probe", ProbeSettings, _serve, purpose="A minimal service for the runtime shutdown tests.")
