"""Which roles may call which recognize method (anything not listed is denied).

Ingest calls Recognize as ``ingest-service``; operators may read an image of their own; only ``recognize-admin``
may reload the models.
"""

from __future__ import annotations

from anpr.runtime.auth import AccessPolicy, Role, roles

SERVICE_NAME = "anpr.recognize.v1.RecognizeService"

_CALLERS = roles(Role.INGEST_SERVICE, Role.OPERATOR)

ACCESS_POLICY: AccessPolicy = {
    f"/{SERVICE_NAME}/{method}": allowed
    for method, allowed in {
        "Recognize": _CALLERS,
        "StreamRecognize": _CALLERS,
        "GetModelInfo": roles(Role.INGEST_SERVICE, Role.OPERATOR, Role.RECOGNIZE_ADMIN),
        "ReloadModels": roles(Role.RECOGNIZE_ADMIN),
    }.items()
}
