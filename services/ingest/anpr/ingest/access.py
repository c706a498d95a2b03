"""Which roles may call which ingest method (anything not listed is denied)."""

from __future__ import annotations

from anpr.runtime.auth import AccessPolicy, Role, roles

SERVICE_NAME = "anpr.ingest.v1.IngestService"

_CAMERAS = roles(Role.CAMERA, Role.SERVICE)
_ADMINS = roles(Role.OPERATOR, Role.SERVICE)
_EVENT_READERS = roles(Role.OPERATOR, Role.SERVICE)

ACCESS_POLICY: AccessPolicy = {
    f"/{SERVICE_NAME}/{method}": allowed
    for method, allowed in {
        "RegisterCamera": _ADMINS,
        "GetCamera": _ADMINS,
        "ListCameras": _ADMINS,
        "UpdateCamera": _ADMINS,
        "DeleteCamera": _ADMINS,
        "SubmitFrame": _CAMERAS,
        "PushFrames": _CAMERAS,
        "AddSource": _ADMINS,
        "RemoveSource": _ADMINS,
        "ListSources": _ADMINS,
        "GetPlateEvents": _EVENT_READERS,
        # Dead letters are plate events (text and crops): only those who may read events may see or move them.
        "ListDeadLetters": _EVENT_READERS,
        "ReplayDeadLetters": _EVENT_READERS,
        "PurgeDeadLetters": _EVENT_READERS,
    }.items()
}
