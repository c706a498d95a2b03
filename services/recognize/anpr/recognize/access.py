"""Which roles may call which recognize method (anything not listed is denied)."""

from __future__ import annotations

from anpr.runtime.auth import AccessPolicy, Role, roles

SERVICE_NAME = "anpr.recognize.v1.RecognizeService"

_CALLERS = roles(Role.SERVICE, Role.OPERATOR)

ACCESS_POLICY: AccessPolicy = {
    f"/{SERVICE_NAME}/{method}": allowed
    for method, allowed in {
        "Recognize": _CALLERS,
        "StreamRecognize": _CALLERS,
        "GetModelInfo": _CALLERS,
        "ReloadModels": roles(Role.SERVICE),
    }.items()
}
