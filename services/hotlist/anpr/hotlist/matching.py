"""The in-memory match index: normalised exact, OCR-confusion, edit-distance and wildcard matching.

Design (SymSpell-style deletion neighbourhood over confusion-folded text):

* Every plate entry is folded (each character replaced by the representative of its OCR-confusion class, so
  ``O``, ``D``, ``Q`` become ``0``), packed into a 60-bit integer (:mod:`anpr.hotlist.plates`), and indexed under
  that key and under the keys of every string made by deleting up to ``k`` characters. A reading is looked up
  under its own deletion keys: two strings within edit distance ``k`` always share a key, so the candidates are
  complete, and a C-speed Levenshtein check (rapidfuzz) confirms each one.
* Keys live in one sorted ``uint64`` array (``numpy.searchsorted`` finds a key among millions in microseconds,
  at 12 bytes per key instead of ~100 for a dict). Entries added after the last build go to a small dict; once
  that holds 100,000 keys the arrays are rebuilt (vectorised, a few seconds per million entries, on a copy in a
  thread: :meth:`MatchIndex.in_place`). A larger dict stalls the event loop as it grows: on its way to two million
  keys (a quarter of a million-entry base, the limit until 2026-12-07) some changes took 50-210 ms (its resizes,
  and the garbage collector's passes over the lists it then held).
* Wildcard patterns are compiled twice: each alone, and all together into one alternation per form (exact and
  folded) that screens a reading in one C-level call. Most readings match no pattern, so their cost no longer
  grows with the number of patterns (issue 19: 1,000 patterns had made ReportReads of 100 events 30x slower);
  only a reading that passes the screen is tested against the patterns of a length it can match.

The index holds only what matching needs (ids, target text, list, expiry); the entry's details are read from
PostgreSQL, the source of truth, for the rare hit.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from anpr.hotlist.gaps import AffixIndex, GapRules, fits
from anpr.hotlist.patterns import MAX_PATTERN_LENGTH, CompiledPattern, to_regex
from anpr.hotlist.plates import BITS, MAX_PLATE_LENGTH, Folding, code_rows, deletion_keys, pack_rows

# Below this many entries at once, new keys go to the delta dict; above it, the arrays are rebuilt.
_BULK = 2000
# At most this many changed entries are applied in place (on the event loop: about 20 microseconds each at a
# million entries); more, or any change that rebuilds the arrays, go to a clone in a thread (:meth:`in_place`).
_IN_PLACE = 256
# Keys in the delta dict that call for a rebuild (see the module's docstring).
_MAX_DELTA_KEYS = 100_000
# Above this many patterns, a change of a pattern recompiles a screen too large to build on the event loop.
_FEW_PATTERNS = 64


class Strictness(IntEnum):
    """Which kinds of match alert for a list (values as in ``anpr.hotlist.v1.MatchStrictness``)."""

    EXACT = 1
    STANDARD = 2
    LENIENT = 3


class MatchKind(IntEnum):
    """Why a reading matched (values as in ``anpr.hotlist.v1.MatchKind``)."""

    EXACT = 1
    CONFUSION = 2
    EDIT_DISTANCE = 3
    WILDCARD = 4
    PARTIAL = 5


@dataclass(frozen=True, slots=True)
class ListInfo:
    """What matching needs to know about a hotlist."""

    hotlist_id: int
    name: str
    priority: int
    active: bool
    strictness: Strictness
    min_match_score: float


@dataclass(frozen=True, slots=True)
class IndexedEntry:
    """What matching needs to know about an entry; ``expires_at`` is a Unix time or None for never."""

    entry_id: int
    hotlist_id: int
    target: str
    is_pattern: bool
    expires_at: float | None = None


@dataclass(frozen=True)
class EntryColumns:
    """Entries as columns (what a full list load fetches): ids, lists, ASCII targets, pattern flags, expiries."""

    entry_ids: npt.NDArray[np.int64]
    hotlist_ids: npt.NDArray[np.int64]
    targets: npt.NDArray[np.bytes_]
    is_pattern: npt.NDArray[np.bool_]
    expiries: npt.NDArray[np.float64]  # Unix time; inf for never

    @classmethod
    def concatenate(cls, parts: Sequence[EntryColumns]) -> EntryColumns:
        """One set of columns from several (chunks of a cursor)."""
        if not parts:
            return cls(
                np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, "S1"), np.zeros(0, np.bool_), np.zeros(0)
            )
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in _ENTRY_FIELDS))

    def where(self, rows: npt.NDArray[np.bool_]) -> EntryColumns:
        """The rows selected by a mask."""
        return EntryColumns(*(getattr(self, f)[rows] for f in _ENTRY_FIELDS))


_ENTRY_FIELDS = ("entry_ids", "hotlist_ids", "targets", "is_pattern", "expiries")


@dataclass(frozen=True, slots=True)
class Reading:
    """One candidate text of a plate; confidence 0 means not stated."""

    text: str
    confidence: float = 0.0


class RawHit(NamedTuple):
    """One reading matching one entry, with why and how strongly (a tuple: made by the thousand per second)."""

    entry_id: int
    hotlist_id: int
    hotlist_name: str
    priority: int
    target: str
    kind: MatchKind
    matched_text: str
    alternative_rank: int
    edit_distance: int
    confusion_count: int
    score: float
    meets_strictness: bool


@dataclass(frozen=True)
class MatchRules:
    """The configurable parts of matching."""

    folding: Folding
    min_length_distance_1: int = 6
    min_length_distance_2: int = MAX_PLATE_LENGTH + 1
    gaps: GapRules = field(default_factory=GapRules)

    def max_distance(self, length: int) -> int:
        """Edit distance allowed for a plate of this length."""
        if length >= self.min_length_distance_2:
            return 2
        return 1 if length >= self.min_length_distance_1 else 0

    @property
    def depth(self) -> int:
        """Deletion depth the index must hold: the largest distance any length allows."""
        return self.max_distance(MAX_PLATE_LENGTH)


def _base_score(kind: MatchKind, distance: int, confusions: int) -> float:
    if kind is MatchKind.EXACT:
        return 1.0
    if kind is MatchKind.CONFUSION:
        return max(0.6, 0.95 - 0.05 * (confusions - 1))
    if kind is MatchKind.WILDCARD:
        return 0.85 if confusions == 0 else 0.7
    if kind is MatchKind.PARTIAL:
        return 0.6
    return 0.7 if distance <= 1 else 0.5


def _meets(strictness: Strictness, kind: MatchKind, rank: int, confusions: int) -> bool:
    if strictness is Strictness.EXACT:
        return rank == 0 and confusions == 0 and kind in (MatchKind.EXACT, MatchKind.WILDCARD)
    if strictness is Strictness.STANDARD:
        return kind not in (MatchKind.EDIT_DISTANCE, MatchKind.PARTIAL)
    return True


@dataclass(frozen=True)
class _PatternScreen:
    """Every wildcard pattern as one alternation per form, and the patterns by the reading lengths they can match."""

    exact: re.Pattern[str] | None = None
    folded: re.Pattern[str] | None = None
    # Patterns without '*' match one length only; those with '*' any length from their fixed characters up.
    by_length: dict[int, tuple[int, ...]] = field(default_factory=dict)
    open_ended: tuple[tuple[int, int], ...] = ()  # (minimum length, slot)

    @classmethod
    def of(cls, patterns: dict[int, CompiledPattern], columns: _Columns) -> _PatternScreen:
        if not patterns:
            return cls()
        fixed: dict[int, list[int]] = {}
        open_ended: list[tuple[int, int]] = []
        targets = {slot: columns.text(slot) for slot in patterns}
        for slot, target in targets.items():
            width = len(target) - target.count("*")
            if "*" in target:
                open_ended.append((width, slot))
            else:
                fixed.setdefault(width, []).append(slot)

        def alternation(texts: Iterable[str]) -> re.Pattern[str]:
            # to_regex anchors each pattern; the alternation is used with fullmatch, so the anchors are dropped.
            return re.compile("|".join(f"(?:{to_regex(t)[1:-1]})" for t in sorted(set(texts))))

        return cls(
            alternation(targets.values()),
            alternation(columns.folded_text(slot) for slot in patterns),
            {length: tuple(slots) for length, slots in fixed.items()},
            tuple(open_ended),
        )

    def candidates(self, text: str, folded: str) -> list[int]:
        """Slots of the patterns worth testing against a reading (none for most readings, in one regex call)."""
        if self.exact is None or self.folded is None:
            return []
        if not self.exact.fullmatch(text) and not self.folded.fullmatch(folded):
            return []
        length = len(text)
        return [*self.by_length.get(length, ()), *(slot for width, slot in self.open_ended if width <= length)]


_TEXT = f"S{MAX_PATTERN_LENGTH}"  # ASCII plate or pattern text, NUL-padded


class _Columns:
    """Per-slot columns in numpy arrays, grown by doubling.

    About 60 bytes per entry; the same columns as Python lists of str, int and float objects (plus a dict from
    entry id to slot) took about 550 bytes per entry: 1,000,000 entries held 700 MB, above what a replica may use.
    A removed entry's slot stays (``alive`` False) until the next rebuild.
    """

    def __init__(self, capacity: int = 0) -> None:
        self.size = 0
        self.targets = np.zeros(capacity, dtype=_TEXT)
        self.folded = np.zeros(capacity, dtype=_TEXT)
        self.entry_ids = np.zeros(capacity, dtype=np.int64)
        self.lists = np.zeros(capacity, dtype=np.int64)
        self.expiries = np.zeros(capacity, dtype=np.float64)
        self.alive = np.zeros(capacity, dtype=np.bool_)

    _NAMES = ("targets", "folded", "entry_ids", "lists", "expiries", "alive")

    def room(self) -> int:
        """Slots that can be appended before the columns grow (a copy of every column)."""
        return len(self.entry_ids) - self.size

    def copy(self) -> _Columns:
        twin = _Columns()
        twin.size = self.size
        for name in self._NAMES:
            setattr(twin, name, getattr(self, name)[: self.size].copy())
        return twin

    def append(
        self,
        targets: npt.NDArray[np.bytes_],
        folded: npt.NDArray[np.bytes_],
        entry_ids: npt.NDArray[np.int64],
        lists: npt.NDArray[np.int64],
        expiries: npt.NDArray[np.float64],
    ) -> range:
        """Add live slots; returns their numbers."""
        count = len(entry_ids)
        end = self.size + count
        if end > len(self.entry_ids):
            capacity = max(end, 2 * len(self.entry_ids), 64)
            for name in self._NAMES:
                column = getattr(self, name)
                grown = np.zeros(capacity, dtype=column.dtype)
                grown[: self.size] = column[: self.size]
                setattr(self, name, grown)
        added = range(self.size, end)
        self.targets[self.size : end] = targets
        self.folded[self.size : end] = folded
        self.entry_ids[self.size : end] = entry_ids
        self.lists[self.size : end] = lists
        self.expiries[self.size : end] = expiries
        self.alive[self.size : end] = True
        self.size = end
        return added

    def compacted(self) -> tuple[_Columns, npt.NDArray[np.int64]]:
        """The live slots only, and the new slot of every old one (-1 for a removed slot)."""
        keep = np.flatnonzero(self.alive[: self.size])
        compact = _Columns()
        compact.size = len(keep)
        for name in self._NAMES:
            setattr(compact, name, getattr(self, name)[keep])
        renumbered = np.full(self.size, -1, dtype=np.int64)
        renumbered[keep] = np.arange(len(keep))
        return compact, renumbered

    def text(self, slot: int) -> str:
        return bytes(self.targets[slot]).decode("ascii")

    def folded_text(self, slot: int) -> str:
        return bytes(self.folded[slot]).decode("ascii")


class MatchIndex:
    """Every active entry of every list, ready to match a reading in well under a millisecond."""

    def __init__(self, rules: MatchRules) -> None:
        self.rules = rules
        self._fold = rules.folding.fold
        self._fold_bytes = np.frombuffer(rules.folding.byte_table(), dtype=np.uint8)
        self._depth = rules.depth
        # Deletion keys of a plate of the longest length: the most one new plate adds to the delta dict.
        self._most_keys_per_plate = sum(math.comb(MAX_PLATE_LENGTH, k) for k in range(self._depth + 1))
        self._lists: dict[int, ListInfo] = {}
        self._columns = _Columns()
        # Entry id -> slot: sorted arrays for the slots of the last rebuild, a dict for slots added since.
        self._base_ids: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._base_id_slots: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._new_ids: dict[int, int] = {}
        self._live = 0
        self._patterns: dict[int, CompiledPattern] = {}
        self._screen = _PatternScreen()
        self._base_keys: npt.NDArray[np.uint64] = np.zeros(0, dtype=np.uint64)
        self._base_slots: npt.NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        # Key -> slots added since the last build. Tuples of ints, which the garbage collector stops tracking: a
        # list per key made each full collection walk every key (50 ms pauses on the event loop at 100,000 keys).
        self._delta: dict[int, tuple[int, ...]] = {}
        self._delta_keys = 0
        self._dead = 0
        # Partial readings: every plate entry by text and by reversed text (anpr.hotlist.gaps).
        self._affixes = AffixIndex.empty()
        self.rebuilds = 0  # how often the key arrays were built (each one seconds at a million entries)

    def __len__(self) -> int:
        return self._live

    # -- changes ------------------------------------------------------------------------------------------------

    def clone(self) -> MatchIndex:
        """An independent copy to change off the event loop (reads only this index, so matching may go on)."""
        twin = MatchIndex.__new__(MatchIndex)
        twin.__dict__.update(self.__dict__)
        twin._lists = dict(self._lists)
        twin._columns = self._columns.copy()
        twin._new_ids = dict(self._new_ids)
        twin._patterns = dict(self._patterns)
        twin._delta = dict(self._delta)
        return twin

    def in_place(self, removed: Sequence[int], changed: EntryColumns) -> bool:
        """Whether removing the ``removed`` ids and upserting ``changed`` is quick enough to do in place, on the
        event loop: few entries, room for them in the columns, no recompiled pattern screen over many patterns
        (40 us a pattern), and certainly no rebuild of the key arrays (seconds at a million entries, which every
        match on the replica would wait for). Otherwise the caller changes a :meth:`clone` in a thread (about 10 ms
        to make at a million entries) and adopts it (:meth:`adopt`)."""
        count = len(changed.entry_ids)
        if len(removed) + count > _IN_PLACE or count > self._columns.room():
            return False
        if len(self._patterns) > _FEW_PATTERNS and (
            bool(changed.is_pattern.any()) or any(self._slot_of(entry_id) in self._patterns for entry_id in removed)
        ):
            return False
        # Bounds: every changed entry a new plate of the longest length, every removed one alive.
        delta_keys = self._delta_keys + count * self._most_keys_per_plate
        return not self._rebuild_due(delta_keys, self._dead + len(removed), self._live - len(removed))

    def adopt(self, other: MatchIndex) -> None:
        """Take over ``other``'s state in one step (between two awaits, so no match sees half of it)."""
        self.__dict__.update(other.__dict__)

    def set_list(self, info: ListInfo) -> None:
        """Add a list or change its settings (its entries stay)."""
        self._lists[info.hotlist_id] = info

    def list_info(self, hotlist_id: int) -> ListInfo | None:
        """The settings of a list as the index knows them."""
        return self._lists.get(hotlist_id)

    def list_named(self, name: str) -> ListInfo | None:
        """The settings of a list by name (lists are few; a scan is fine)."""
        return next((info for info in self._lists.values() if info.name == name), None)

    def drop_list(self, hotlist_id: int) -> None:
        """Forget a list and all its entries."""
        self._remove_slots(self._slots_of_list(hotlist_id))
        self._lists.pop(hotlist_id, None)
        self._maybe_rebuild()

    def load_list(self, info: ListInfo, entries: Iterable[IndexedEntry]) -> None:
        """Replace a list and all its entries at once (full reload, e.g. after a REPLACE import)."""
        self._lists[info.hotlist_id] = info
        self._remove_slots(self._slots_of_list(info.hotlist_id))
        self.upsert(entries)

    def _slots_of_list(self, hotlist_id: int) -> list[int]:
        columns = self._columns
        return np.flatnonzero(columns.alive[: columns.size] & (columns.lists[: columns.size] == hotlist_id)).tolist()

    def _slots_of_ids(self, entry_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The live slot of each id, -1 where the index does not hold it (vectorised :meth:`_slot_of`)."""
        slots = np.full(len(entry_ids), -1, dtype=np.int64)
        if len(self._base_ids):
            at = np.minimum(self._base_ids.searchsorted(entry_ids), len(self._base_ids) - 1)
            found = self._base_ids[at] == entry_ids
            slots[found] = self._base_id_slots[at[found]]
        if self._new_ids:
            for row, entry_id in enumerate(entry_ids.tolist()):
                slot = self._new_ids.get(entry_id)
                if slot is not None:
                    slots[row] = slot
        known = np.flatnonzero(slots >= 0)
        slots[known[~self._columns.alive[slots[known]]]] = -1
        return slots

    def _slot_of(self, entry_id: int) -> int | None:
        slot = self._new_ids.get(entry_id)
        if slot is None:
            at = int(self._base_ids.searchsorted(entry_id))
            if at == len(self._base_ids) or int(self._base_ids[at]) != entry_id:
                return None
            slot = int(self._base_id_slots[at])
        return slot if self._columns.alive[slot] else None

    def upsert(self, entries: Iterable[IndexedEntry]) -> None:
        """Add entries, or update the expiry of known ones (an entry's target never changes)."""
        entries = list(entries)
        self.upsert_columns(
            EntryColumns(
                np.fromiter((e.entry_id for e in entries), dtype=np.int64, count=len(entries)),
                np.fromiter((e.hotlist_id for e in entries), dtype=np.int64, count=len(entries)),
                np.array([e.target for e in entries], dtype=_TEXT),
                np.fromiter((e.is_pattern for e in entries), dtype=np.bool_, count=len(entries)),
                np.fromiter(
                    (math.inf if e.expires_at is None else e.expires_at for e in entries),
                    dtype=np.float64,
                    count=len(entries),
                ),
            )
        )

    def upsert_columns(self, entries: EntryColumns) -> None:
        """:meth:`upsert` for entries in columns (an import's million changed entries without an object each)."""
        slots = self._slots_of_ids(entries.entry_ids)
        known = slots >= 0
        self._columns.expiries[slots[known]] = entries.expiries[known]
        if not known.all():
            self._add(entries.where(~known))

    def change(self, removed: Iterable[int], changed: EntryColumns) -> None:
        """Forget the ``removed`` ids, then upsert ``changed``: one list's changes since it was last read."""
        self.remove(removed)
        self.upsert_columns(changed)

    def load_list_columns(self, info: ListInfo, entries: EntryColumns) -> None:
        """:meth:`load_list` for entries already in columns (a million entries without a Python object each)."""
        self._lists[info.hotlist_id] = info
        self._remove_slots(self._slots_of_list(info.hotlist_id))
        if len(entries.entry_ids):
            self._add(entries)
        else:
            self._maybe_rebuild()

    def _add(self, entries: EntryColumns) -> None:
        """Add entries the index does not hold yet."""
        targets = entries.targets.astype(_TEXT)
        width = np.dtype(_TEXT).itemsize
        folded = self._fold_bytes[targets.view(np.uint8)].view(_TEXT).reshape(len(targets))
        assert folded.dtype.itemsize == width
        slots = self._columns.append(targets, folded, entries.entry_ids, entries.hotlist_ids, entries.expiries)
        self._live += len(slots)
        first = slots.start
        pattern_slots = (np.flatnonzero(entries.is_pattern) + first).tolist()
        for slot in pattern_slots:
            target = self._columns.text(slot)
            self._patterns[slot] = CompiledPattern.of(target, self._fold(target))
        if len(slots) - len(pattern_slots) > _BULK:
            self._rebuild()  # maps every id to its slot from the columns: no dict entry per new id
            return
        for offset, entry_id in enumerate(entries.entry_ids.tolist()):
            self._new_ids[entry_id] = first + offset
        if pattern_slots:
            self._rescreen()
        plate_slots = np.flatnonzero(~entries.is_pattern) + first
        if len(plate_slots):  # patterns alone leave the million-entry arrays uncopied
            self._affixes = self._affixes.plus(folded[~entries.is_pattern], plate_slots)
        delta = self._delta
        for slot in plate_slots.tolist():
            for key in deletion_keys(self._columns.folded_text(slot), self._depth):
                delta[key] = (*delta.get(key, ()), slot)
                self._delta_keys += 1
        self._maybe_rebuild()

    def remove(self, entry_ids: Iterable[int]) -> None:
        """Forget entries by id; unknown ids are ignored."""
        self._remove_slots([slot for e in entry_ids if (slot := self._slot_of(e)) is not None])
        self._maybe_rebuild()

    def _remove_slots(self, slots: list[int]) -> None:
        patterns_changed = False
        for slot in slots:
            if not self._columns.alive[slot]:
                continue
            self._columns.alive[slot] = False
            patterns_changed |= self._patterns.pop(slot, None) is not None
            self._new_ids.pop(int(self._columns.entry_ids[slot]), None)
            self._live -= 1
            self._dead += 1
        if patterns_changed:
            self._rescreen()

    def _rescreen(self) -> None:
        """Recompile the pattern screen (changes are applied to a clone off the event loop, so this is too)."""
        self._screen = _PatternScreen.of(self._patterns, self._columns)

    def _maybe_rebuild(self) -> None:
        if self._rebuild_due(self._delta_keys, self._dead, self._live):
            self._rebuild()

    def _rebuild_due(self, delta_keys: int, dead: int, live: int) -> bool:
        """Whether the delta dict or the dead slots have outgrown the arrays they sit beside."""
        return delta_keys > _MAX_DELTA_KEYS or dead > max(10_000, live // 4)

    def _rebuild(self) -> None:
        """Compact the slots and rebuild the sorted key arrays from every live plate entry (vectorised)."""
        self._columns, renumbered = self._columns.compacted()
        self._patterns = {int(renumbered[slot]): compiled for slot, compiled in self._patterns.items()}
        columns = self._columns
        order = np.argsort(columns.entry_ids, kind="stable")
        self._base_ids = columns.entry_ids[order]
        self._base_id_slots = order.astype(np.int64)
        self._new_ids = {}
        is_plate = np.ones(columns.size, dtype=np.bool_)
        is_plate[list(self._patterns)] = False
        plate_slots = np.flatnonzero(is_plate)
        plates = columns.folded[plate_slots]
        self._base_keys, self._base_slots = _key_arrays(plates, plate_slots, self._depth)
        self._affixes = AffixIndex(plates, plate_slots)
        self._rescreen()
        self._delta = {}
        self._delta_keys = 0
        self._dead = 0
        self._live = columns.size
        self.rebuilds += 1

    # -- matching -----------------------------------------------------------------------------------------------

    def match(
        self,
        readings: Sequence[Reading],
        *,
        hotlists: Collection[int] | None = None,
        include_weak: bool = False,
        max_hits: int = 50,
        now: float | None = None,
        hidden_runs: int = 0,
    ) -> list[RawHit]:
        """Hits of the readings (best first, then alternatives), strongest first, one per entry.

        ``hidden_runs``: the readings miss that many runs of characters the reader could not read (a bar across
        the plate, a plate running off the frame). Part of a plate can equal, or nearly equal, another plate, so
        their hits meet only the strictness of lenient lists. The best reading is also matched with the hidden
        runs as gaps (:mod:`anpr.hotlist.gaps`): ``PARTIAL`` hits.
        """
        moment = time.time() if now is None else now
        best: dict[int, RawHit] = {}
        # Edit-distance candidates cost most; skip them when no list that could alert on them is in play.
        fuzzy = include_weak or any(
            info.active and info.strictness is Strictness.LENIENT and (hotlists is None or info.hotlist_id in hotlists)
            for info in self._lists.values()
        )
        for rank, reading in enumerate(readings):
            text = reading.text
            if not text:
                continue
            folded = self._fold(text)
            limit = self.rules.max_distance(len(text)) if fuzzy else 0
            factor = reading.confidence if reading.confidence > 0 else 1.0
            if rank > 0:
                factor *= 0.9
            self._scan(best, self._candidates(folded, limit), text, folded, limit, rank, factor, hotlists, moment)
            for slot in self._screen.candidates(text, folded):
                compiled = self._patterns[slot]
                if compiled.exact.match(text):
                    confusions = 0
                elif compiled.folded.match(folded):
                    confusions = 1
                else:
                    continue
                hit = self._hit(slot, MatchKind.WILDCARD, text, rank, 0, confusions, factor, hotlists, moment)
                if hit is not None and (slot not in best or hit.score > best[slot].score):
                    best[slot] = hit
        if hidden_runs > 0:
            if readings and readings[0].text:
                self._match_gaps(best, readings[0], hidden_runs, hotlists, moment, include_weak)
            best = {slot: self._partial(hit) for slot, hit in best.items()}
        hits = [hit for hit in best.values() if include_weak or hit.meets_strictness]
        hits.sort(key=lambda h: (h.meets_strictness, h.score, h.priority), reverse=True)
        return hits[:max_hits]

    def _match_gaps(
        self,
        best: dict[int, RawHit],
        reading: Reading,
        hidden_runs: int,
        hotlists: Collection[int] | None,
        now: float,
        include_weak: bool,
    ) -> None:
        """PARTIAL hits of a partial reading's text, the hidden runs as gaps (only where no stronger hit exists).

        A reading that fits more than ``max_alerting`` entries points at no one vehicle: its gap hits are weak, so
        unless weak hits are asked for, the search stops there."""
        rules = self.rules.gaps
        folded = self._fold(reading.text)
        if not rules.enabled or len(folded) < rules.min_visible:
            return
        columns = self._columns
        factor = reading.confidence if reading.confidence > 0 else 1.0
        found: dict[int, RawHit] = {}
        for slot in self._affixes.candidates(folded, hidden_runs, rules, columns.folded):
            if slot in best or slot in found or not columns.alive[slot]:
                continue
            if not fits(folded, columns.folded_text(slot), hidden_runs, rules.max_gap):
                continue
            hit = self._hit(slot, MatchKind.PARTIAL, reading.text, 0, 0, 0, factor, hotlists, now)
            if hit is None:
                continue
            found[slot] = hit
            if len(found) > rules.max_alerting and not include_weak:
                return
        if len(found) > rules.max_alerting:
            found = {slot: hit._replace(meets_strictness=False) for slot, hit in found.items()}
        best.update(found)

    def _partial(self, hit: RawHit) -> RawHit:
        info = self._lists.get(hit.hotlist_id)
        lenient = info is not None and info.strictness is Strictness.LENIENT
        return hit._replace(meets_strictness=hit.meets_strictness and lenient)

    def _candidates(self, folded: str, limit: int) -> set[int]:
        keys = deletion_keys(folded, limit)
        found: set[int] = set()
        if len(self._base_keys):
            # Per-key slicing beats a vectorised gather here: a reading has ~10 keys and numpy's per-call overhead,
            # not the work, dominates at that size (measured).
            wanted = np.fromiter(keys, dtype=np.uint64, count=len(keys))
            base, slots = self._base_keys, self._base_slots
            lows = base.searchsorted(wanted, "left").tolist()
            highs = base.searchsorted(wanted, "right").tolist()
            for low, high in zip(lows, highs, strict=True):
                if high - low == 1:
                    found.add(slots.item(low))
                elif low < high:
                    found.update(slots[low:high].tolist())
        if self._delta:
            for key in keys:
                added = self._delta.get(key)
                if added:
                    found.update(added)
        return found

    def _scan(
        self,
        best: dict[int, RawHit],
        candidates: set[int],
        text: str,
        folded: str,
        limit: int,
        rank: int,
        factor: float,
        hotlists: Collection[int] | None,
        now: float,
    ) -> None:
        """Verify candidates and keep the strongest hit per entry.

        rapidfuzz computes every candidate's distance in one C call, so Python only touches the real hits.
        """
        columns = self._columns
        choices = {slot: columns.folded_text(slot) for slot in candidates if columns.alive[slot]}
        max_distance = self.rules.max_distance
        for _, distance, slot in process.extract(
            folded, choices, scorer=Levenshtein.distance, score_cutoff=limit, limit=None
        ):
            target = columns.text(slot)
            confusions = 0
            if distance == 0:
                if target == text:
                    kind = MatchKind.EXACT
                else:
                    kind = MatchKind.CONFUSION
                    confusions = self.rules.folding.confusions(target, text)
            elif distance <= max_distance(len(target)):
                kind = MatchKind.EDIT_DISTANCE
            else:
                continue
            hit = self._hit(slot, kind, text, rank, int(distance), confusions, factor, hotlists, now)
            if hit is not None and (slot not in best or hit.score > best[slot].score):
                best[slot] = hit

    def _hit(
        self,
        slot: int,
        kind: MatchKind,
        text: str,
        rank: int,
        distance: int,
        confusions: int,
        factor: float,
        hotlists: Collection[int] | None,
        now: float,
    ) -> RawHit | None:
        columns = self._columns
        info = self._lists.get(int(columns.lists[slot]))
        if not columns.alive[slot] or info is None or not info.active or columns.expiries[slot] <= now:
            return None
        if hotlists is not None and info.hotlist_id not in hotlists:
            return None
        score = round(_base_score(kind, distance, confusions) * factor, 4)
        meets = _meets(info.strictness, kind, rank, confusions) and score >= info.min_match_score
        # Positional: noticeably cheaper than keywords in this hot path (field order as declared in RawHit).
        return RawHit(
            int(columns.entry_ids[slot]),
            info.hotlist_id,
            info.name,
            info.priority,
            columns.text(slot),
            kind,
            text,
            rank,
            distance,
            confusions,
            score,
            meets,
        )


def _key_arrays(
    plates: npt.NDArray[np.bytes_], slots: npt.NDArray[np.int64], depth: int
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int32]]:
    """Sorted deletion-neighbourhood keys of folded plates and the slot each key belongs to (vectorised)."""
    if not len(plates):
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int32)
    owners = slots.astype(np.int32)  # 4 bytes a key: there are about 8 keys per plate
    codes = code_rows(plates)
    packed = pack_rows(codes)
    lengths = (codes != 0).sum(axis=1)
    del codes
    all_keys = [packed]
    all_owners = [owners]
    level = (packed, lengths, owners)
    for _ in range(depth):
        next_keys, next_lengths, next_owners = [], [], []
        keys, level_lengths, level_owners = level
        for position in range(MAX_PLATE_LENGTH):
            mask = (level_lengths > position) & (level_lengths > 1)
            if not mask.any():
                continue
            chosen = keys[mask]
            keep_high = np.uint64(BITS * (MAX_PLATE_LENGTH - position))
            high = (chosen >> keep_high) << keep_high if position > 0 else np.zeros_like(chosen)
            low = chosen & np.uint64((1 << (BITS * (MAX_PLATE_LENGTH - 1 - position))) - 1)
            next_keys.append(high | (low << np.uint64(BITS)))
            next_lengths.append(level_lengths[mask] - 1)
            next_owners.append(level_owners[mask])
        if not next_keys:
            break
        level = (np.concatenate(next_keys), np.concatenate(next_lengths), np.concatenate(next_owners))
        all_keys.append(level[0])
        all_owners.append(level[2])
    keys = np.concatenate(all_keys)
    slots = np.concatenate(all_owners)
    order = np.argsort(keys, kind="stable")
    return keys[order], slots[order].astype(np.int32, copy=False)
