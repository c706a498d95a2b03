"""Types shared by tests that start real services in-process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from anpr.runtime.server import ServiceServer

StartService = Callable[..., Awaitable[ServiceServer]]
"""``await start_service("hotlist", **setting_overrides)``: a started server, stopped after the test."""
