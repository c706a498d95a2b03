"""Which roles may call which hotlist method (anything not listed is denied).

Ingest reports reads as ``ingest-service`` and may do nothing else here; reading lists is for their admins and
operators, searching stored reads for investigators (with a purpose, audited), the trail for auditors.
"""

from __future__ import annotations

from anpr.runtime.auth import AccessPolicy, Role, roles

SERVICE_NAME = "anpr.hotlist.v1.HotlistService"

_ADMIN = roles(Role.HOTLIST_ADMIN)
_READERS = roles(Role.HOTLIST_ADMIN, Role.OPERATOR)

ACCESS_POLICY: AccessPolicy = {
    f"/{SERVICE_NAME}/{method}": allowed
    for method, allowed in {
        "CreateHotlist": _ADMIN,
        "UpdateHotlist": _ADMIN,
        "GetHotlist": _READERS,
        "DeleteHotlist": _ADMIN,
        "ListHotlists": _READERS,
        "UpsertEntries": _ADMIN,
        "DeleteEntries": _ADMIN,
        "ImportEntries": _ADMIN,
        "ListEntries": roles(Role.HOTLIST_ADMIN),
        "Match": roles(Role.OPERATOR),
        "ReportReads": roles(Role.INGEST_SERVICE),
        "SubscribeAlerts": roles(Role.OPERATOR),
        "AcknowledgeAlert": roles(Role.OPERATOR),
        "SearchReads": roles(Role.INVESTIGATOR),
        "GetAuditLog": roles(Role.AUDITOR),
    }.items()
}
