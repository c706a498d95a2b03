"""Which roles may call which hotlist method (anything not listed is denied)."""

from __future__ import annotations

from anpr.runtime.auth import AccessPolicy, Role, roles

SERVICE_NAME = "anpr.hotlist.v1.HotlistService"

_ADMIN = roles(Role.HOTLIST_ADMIN)
_READERS = roles(Role.HOTLIST_ADMIN, Role.OPERATOR, Role.SERVICE)

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
        "Match": roles(Role.OPERATOR, Role.SERVICE),
        "ReportReads": roles(Role.SERVICE),
        "SubscribeAlerts": roles(Role.OPERATOR, Role.SERVICE),
        "AcknowledgeAlert": roles(Role.OPERATOR),
        "SearchReads": roles(Role.INVESTIGATOR),
        "GetAuditLog": roles(Role.AUDITOR),
    }.items()
}
