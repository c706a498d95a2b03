"""Per-call context shared between interceptors, handlers and log records (request id, caller identity)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

request_id_var: ContextVar[str | None] = ContextVar("anpr_request_id", default=None)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: who it is and which roles it holds."""

    identity: str
    roles: frozenset[str] = field(default_factory=frozenset)


principal_var: ContextVar[Principal | None] = ContextVar("anpr_principal", default=None)


def current_request_id() -> str | None:
    """The request id of the call being handled, if any."""
    return request_id_var.get()


def current_principal() -> Principal | None:
    """The authenticated caller of the call being handled (None outside a call or on public methods)."""
    return principal_var.get()
