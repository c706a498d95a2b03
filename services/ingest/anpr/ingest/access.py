"""Which roles may call which ingest method (anything not listed is denied).

Least privilege: cameras (and explicit frame relays) only push frames; administrators own the camera registry and
the pulled sources (which make ingest open network addresses and files); operators read the registry and look up
plate events, always with a purpose and an audit row. No service of the suite calls ingest.
"""

from __future__ import annotations

from anpr.runtime.auth import AccessPolicy, Role, roles

SERVICE_NAME = "anpr.ingest.v1.IngestService"

_FRAMES = roles(Role.CAMERA, Role.FRAME_RELAY)  # a camera only for cameras bound to it (service.py)
_ADMIN = roles(Role.INGEST_ADMIN)
_REGISTRY_READERS = roles(Role.INGEST_ADMIN, Role.OPERATOR)

ACCESS_POLICY: AccessPolicy = {
    f"/{SERVICE_NAME}/{method}": allowed
    for method, allowed in {
        "RegisterCamera": _ADMIN,
        "GetCamera": _REGISTRY_READERS,
        "ListCameras": _REGISTRY_READERS,
        "UpdateCamera": _ADMIN,
        "DeleteCamera": _ADMIN,
        "SubmitFrame": _FRAMES,
        "PushFrames": _FRAMES,
        # Recordings are frames too: a camera only for itself, or a frame relay (the officer's docking station).
        "UploadRecording": _FRAMES,
        "GetUploadStatus": _FRAMES,
        "AddSource": _ADMIN,
        "RemoveSource": _ADMIN,
        # Source URIs may carry credentials (redacted in replies) and name the internal network: admins only.
        "ListSources": _ADMIN,
        # A lookup of stored reads: purpose required and audited (service.py), for operators only.
        "GetPlateEvents": roles(Role.OPERATOR),
        # Dead letters are refused plate events kept for repair: the administrators who fix and replay them.
        "ListDeadLetters": _ADMIN,
        "ReplayDeadLetters": _ADMIN,
        "PurgeDeadLetters": _ADMIN,
    }.items()
}
