"""Matching a reading as the service does it: the index finds the hits, PostgreSQL supplies the entries' details.

A hit is a snapshot: the entry as it was when the read matched, with the effective action and instructions (the
entry's own, else its list's defaults). Alerts store that snapshot as JSON so that later edits of the entry do not
rewrite history.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anpr.hotlist import metrics
from anpr.hotlist.db import Connection
from anpr.hotlist.matching import MatchIndex, MatchKind, RawHit, Reading
from anpr.hotlist.model import Entry, EntryFields
from anpr.hotlist.plates import is_normalised_plate, normalise_plate
from anpr.hotlist.repository import entry_of
from anpr.runtime.errors import NotFound


@dataclass(frozen=True)
class Hit:
    """A hit with the entry it matched and what the officer should do."""

    raw: RawHit
    entry: Entry
    action: int
    instructions: str


@dataclass(frozen=True)
class PlateText:
    """A reading to match: best text and ranked alternatives with confidences; ``hidden_characters`` counts the
    runs of characters the reader saw but could not read (then every text is part of a plate)."""

    text: str
    confidence: float
    alternatives: Sequence[tuple[str, float]] = ()
    hidden_characters: int = 0

    def readings(self) -> list[Reading]:
        """Best reading first, then the alternatives that are valid plates (others cannot match anything)."""
        found = [Reading(self.text, self.confidence)]
        found.extend(Reading(text, confidence) for text, confidence in self.alternatives if is_normalised_plate(text))
        return found


def plate_text(
    text: str, confidence: float, alternatives: Sequence[tuple[str, float]], hidden_characters: int = 0
) -> PlateText:
    """Normalise a reading given by a caller (InvalidArgument for a bad best text)."""
    return PlateText(normalise_plate(text), confidence, alternatives, hidden_characters)


class Matcher:
    """Runs readings against the index and resolves list names."""

    def __init__(self, index: MatchIndex) -> None:
        self.index = index

    def list_ids(self, names: Sequence[str]) -> set[int] | None:
        """Ids of the named lists (None for 'all'); NotFound names the first unknown list."""
        if not names:
            return None
        ids: set[int] = set()
        for name in names:
            info = self.index.list_named(name)
            if info is None:
                raise NotFound(f"no hotlist named {name!r}")
            ids.add(info.hotlist_id)
        return ids

    def raw_hits(
        self, reading: PlateText, hotlists: set[int] | None = None, include_weak: bool = False, max_hits: int = 50
    ) -> list[RawHit]:
        """Hits from the index alone (no database), timed and counted."""
        started = time.perf_counter()
        hits = self.index.match(
            reading.readings(),
            hotlists=hotlists,
            include_weak=include_weak,
            max_hits=max_hits,
            hidden_runs=reading.hidden_characters,
        )
        metrics.MATCH_SECONDS.observe(time.perf_counter() - started)
        for hit in hits:
            metrics.HITS.labels(hit.kind.name.lower()).inc()
        return hits


async def with_details(connection: Connection, raw_hits: Sequence[RawHit]) -> list[Hit]:
    """Attach each hit's entry and effective action; hits whose entry was deleted meanwhile are dropped."""
    if not raw_hits:
        return []
    rows = await connection.fetch(
        """SELECT e.entry_id, h.name AS hotlist_name, e.target, e.is_pattern, e.reason, e.make, e.model, e.colour,
                  e.notes, e.external_reference, e.action, e.instructions, e.expire_time, e.added_by, e.add_time,
                  e.updated_by, e.update_time, h.default_action, h.default_instructions
             FROM hotlist.entries e JOIN hotlist.hotlists h USING (hotlist_id)
            WHERE e.entry_id = ANY($1::bigint[])""",
        [hit.entry_id for hit in raw_hits],
    )
    by_id = {row["entry_id"]: row for row in rows}
    hits: list[Hit] = []
    for raw in raw_hits:
        row = by_id.get(raw.entry_id)
        if row is None:
            continue
        entry = entry_of(row)
        action = entry.fields.action or row["default_action"] or 1
        instructions = entry.fields.instructions or row["default_instructions"]
        hits.append(Hit(raw, entry, action, instructions))
    return hits


def hit_to_json(hit: Hit) -> dict[str, Any]:
    """The stored snapshot of a hit."""
    raw, entry, fields = hit.raw, hit.entry, hit.entry.fields
    return {
        "entry_id": raw.entry_id,
        "hotlist_id": raw.hotlist_id,
        "hotlist_name": raw.hotlist_name,
        "priority": raw.priority,
        "target": raw.target,
        "kind": int(raw.kind),
        "matched_text": raw.matched_text,
        "alternative_rank": raw.alternative_rank,
        "edit_distance": raw.edit_distance,
        "confusion_count": raw.confusion_count,
        "score": raw.score,
        "meets_strictness": raw.meets_strictness,
        "action": hit.action,
        "instructions": hit.instructions,
        "entry": {
            "is_pattern": fields.is_pattern,
            "reason": fields.reason,
            "make": fields.make,
            "model": fields.model,
            "colour": fields.colour,
            "notes": fields.notes,
            "external_reference": fields.external_reference,
            "action": fields.action,
            "instructions": fields.instructions,
            "expire_time": fields.expire_time.isoformat() if fields.expire_time else None,
            "added_by": entry.added_by,
            "add_time": entry.add_time.isoformat(),
            "updated_by": entry.updated_by,
            "update_time": entry.update_time.isoformat(),
        },
    }


def hit_from_json(data: dict[str, Any]) -> Hit:
    """A hit from its stored snapshot."""
    stored = data["entry"]
    raw = RawHit(
        entry_id=data["entry_id"],
        hotlist_id=data["hotlist_id"],
        hotlist_name=data["hotlist_name"],
        priority=data["priority"],
        target=data["target"],
        kind=MatchKind(data["kind"]),
        matched_text=data["matched_text"],
        alternative_rank=data["alternative_rank"],
        edit_distance=data["edit_distance"],
        confusion_count=data["confusion_count"],
        score=data["score"],
        meets_strictness=data["meets_strictness"],
    )
    expiry = stored["expire_time"]
    entry = Entry(
        entry_id=raw.entry_id,
        hotlist_name=raw.hotlist_name,
        fields=EntryFields(
            target=raw.target,
            is_pattern=stored["is_pattern"],
            reason=stored["reason"],
            make=stored["make"],
            model=stored["model"],
            colour=stored["colour"],
            notes=stored["notes"],
            external_reference=stored["external_reference"],
            action=stored["action"],
            instructions=stored["instructions"],
            expire_time=datetime.fromisoformat(expiry) if expiry else None,
        ),
        added_by=stored["added_by"],
        add_time=datetime.fromisoformat(stored["add_time"]),
        updated_by=stored["updated_by"],
        update_time=datetime.fromisoformat(stored["update_time"]),
    )
    return Hit(raw, entry, data["action"], data["instructions"])
