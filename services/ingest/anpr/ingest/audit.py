"""Ingest's audit trail: every lookup of stored plate events, with who made it, why and under which request.

Rows go to ``ingest.audit_log`` (append-only and hash-chained, see migration 0005) in the same transaction as
the lookup they record, so there is no lookup without its row. Ingest keeps its own trail rather than calling the
hotlist service: a lookup must not succeed while its record is elsewhere and unreachable, and ingest's database
is the one that holds the events. Actions use the names of hotlist's trail where they mean the same.
"""

from __future__ import annotations

from anpr.runtime import audit_chain

PLATE_EVENTS_READ = "PLATE_EVENTS_READ"
DEAD_LETTERS_READ = "DEAD_LETTERS_READ"


# Append one row for the current caller to ``ingest.audit_log``; returns its id.
record = audit_chain.AuditTrail("ingest").record
