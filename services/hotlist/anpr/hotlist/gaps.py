"""Matching a partial reading: its visible characters, with the hidden ones as gaps, against the plate entries.

A partial reading (``hidden_characters`` >= 1: a bar or a tow hitch across the plate, or a plate running off the
frame's edge) is the plate with one run of characters left out per hidden run; the reading says how many runs, not
where. Edit-distance matching finds such a plate only when a single character is missing, so ``CA123456`` read as
``123456`` beside the frame's left edge never reached its entry. Here the folded visible text ``V`` matches a plate
that is ``V`` with one to ``runs`` (at most :data:`MAX_GAPS`) gaps of 1 to ``max_gap`` characters each, at any
positions (the start and the end included).

Candidates come from two sorted arrays of the packed folded plates, one of the texts and one of the texts
reversed: the plates that start with a head of ``V`` are one range of the first, those that end with a tail of
``V`` one range of the second (``numpy.searchsorted``). For each placement of the gaps a match must start with the
head before the first gap and end with the tail after the last: the plates in both ranges (the rarer range alone
when it is short) hold every match of that placement. A placement whose rarer end still begins or ends more than
``max_candidates`` plates is skipped: its fixed characters are too few to point at a vehicle. :func:`fits`
checks each candidate, the most specific placements' first, so a reading that fits several plates (and so alerts
on none) is known early, and no read costs more than ``max_examined`` checks.

Too few visible characters match too many plates by chance, so a reading needs ``min_visible`` of them
(:class:`GapRules`; ``docs/BENCHMARKS.md`` has the false alerts per partial read on a list of a million seeded
plates).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from anpr.hotlist.plates import BITS, MAX_PLATE_LENGTH, code_rows, pack, pack_rows, reversed_rows

# Gaps placed for a reading with more hidden runs than this: each further gap multiplies the placements.
MAX_GAPS = 2
# A placement whose rarer end begins or ends no more plates than this takes them as they are; above it, only those
# that have its other end too (checked in numpy, so the Python check stays with a handful of plates).
_DIRECT = 64


@dataclass(frozen=True)
class GapRules:
    """When and how loosely a partial reading is matched with gaps (``min_visible`` 0: never), and how many
    entries it may fit and still alert (``max_alerting``: a reading that fits more points at no one vehicle, so
    its gap hits are returned as weak hits only)."""

    min_visible: int = 5
    max_gap: int = 4
    max_candidates: int = 1000
    max_alerting: int = 1
    # The most candidates one read may cost (each checked in Python): its most specific placements' first, so a
    # read fitting many plates cannot hold the event loop for tens of milliseconds.
    max_examined: int = 2000

    @property
    def enabled(self) -> bool:
        return self.min_visible > 0


def placements(length: int, gaps: int) -> list[tuple[int, ...]]:
    """Every way to put 1 to ``gaps`` gaps between, before or after ``length`` characters (positions 0..length,
    strictly increasing: two gaps at one position are one gap)."""
    out: list[tuple[int, ...]] = [(i,) for i in range(length + 1)]
    if gaps >= 2:
        out += [(i, j) for i in range(length + 1) for j in range(i + 1, length + 1)]
    return out


def fits(visible: str, text: str, gaps: int, max_gap: int) -> bool:
    """Whether ``text`` is ``visible`` with one to ``gaps`` (at most :data:`MAX_GAPS`) gaps of 1 to ``max_gap``
    characters each."""
    n, hidden = len(visible), len(text) - len(visible)
    if hidden < 1 or hidden > min(gaps, MAX_GAPS) * max_gap:
        return False
    if gaps >= 2:
        return _two_gaps(visible, max_gap).fullmatch(text) is not None
    if hidden > max_gap:
        return False
    for i in range(n + 1):
        if not text.startswith(visible[:i]):
            return False  # a longer head cannot match either
        if text.endswith(visible[i:]):
            return True
    return False


@functools.lru_cache(maxsize=1024)
def _two_gaps(visible: str, max_gap: int) -> re.Pattern[str]:
    """One expression for every placement of one or two gaps in ``visible`` (the regex engine tries them in C: a
    Python loop over the placements cost 20 us a plate)."""
    gap = f".{{1,{max_gap}}}"
    options = []
    for places in placements(len(visible), 2):
        pieces, start = [], 0
        for place in places:
            pieces += [re.escape(visible[start:place]), gap]
            start = place
        pieces.append(re.escape(visible[start:]))
        options.append("".join(pieces))
    return re.compile("(?:" + "|".join(options) + ")")


class AffixIndex:
    """Plates sorted by their text and by their reversed text (immutable: :meth:`plus` returns a new one, so an
    index and its clone may share one)."""

    def __init__(self, folded: npt.NDArray[np.bytes_], slots: npt.NDArray[np.int64]) -> None:
        codes = code_rows(folded)
        heads = pack_rows(codes)
        tails = pack_rows(reversed_rows(codes))
        by_head, by_tail = np.argsort(heads, kind="stable"), np.argsort(tails, kind="stable")
        self._heads, self._head_slots = heads[by_head], slots[by_head].astype(np.int32)
        self._tails, self._tail_slots = tails[by_tail], slots[by_tail].astype(np.int32)

    @classmethod
    def empty(cls) -> AffixIndex:
        return cls(np.zeros(0, dtype=f"S{MAX_PLATE_LENGTH}"), np.zeros(0, dtype=np.int64))

    def plus(self, folded: npt.NDArray[np.bytes_], slots: npt.NDArray[np.int64]) -> AffixIndex:
        """This index with more plates merged in (a few thousand into a million: one copy of each array, some
        milliseconds; removed plates stay until the next build, and matching skips slots that are not alive)."""
        added = AffixIndex(folded, slots)
        merged = AffixIndex.__new__(AffixIndex)
        merged._heads, merged._head_slots = _merged(self._heads, self._head_slots, added._heads, added._head_slots)
        merged._tails, merged._tail_slots = _merged(self._tails, self._tail_slots, added._tails, added._tail_slots)
        return merged

    def __len__(self) -> int:
        return len(self._heads)

    def candidates(self, visible: str, gaps: int, rules: GapRules, folded: npt.NDArray[np.bytes_]) -> list[int]:
        """Slots of the plates that may be ``visible`` with up to ``gaps`` gaps, the most specific placements'
        first (verify each with :func:`fits`; a slot may come twice). ``folded``: the index's folded texts by slot."""
        if not len(self._heads):
            return []
        n = len(visible)
        heads = [_range(self._heads, visible[:i]) for i in range(n + 1)]
        tails = [_range(self._tails, visible[j:][::-1]) for j in range(n + 1)]
        chosen: list[tuple[int, npt.NDArray[np.int32]]] = []
        # Each placement is a distinct (first gap, last gap), taken in that order.
        for places in sorted(placements(n, min(gaps, MAX_GAPS)), key=lambda places: (places[0], places[-1])):
            first, last = places[0], places[-1]
            (head_low, head_high), (tail_low, tail_high) = heads[first], tails[last]
            if min(head_high - head_low, tail_high - tail_low) > rules.max_candidates:
                continue
            # The rarer end's plates; where they are many, those that have the other end too (checked in numpy).
            if head_high - head_low <= tail_high - tail_low:
                slots, other, backwards = self._head_slots[head_low:head_high], visible[last:][::-1], True
            else:
                slots, other, backwards = self._tail_slots[tail_low:tail_high], visible[:first], False
            if len(slots) > _DIRECT:
                codes = code_rows(folded[slots])
                slots = slots[_starts_with(pack_rows(reversed_rows(codes) if backwards else codes), other)]
            chosen.append((len(slots), slots))
        chosen.sort(key=lambda item: item[0])
        out: list[int] = []
        for count, slots in chosen:
            if len(out) + count > rules.max_examined:
                break
            out.extend(slots.tolist())
        return out


def _merged(
    keys: npt.NDArray[np.uint64],
    slots: npt.NDArray[np.int32],
    more: npt.NDArray[np.uint64],
    their: npt.NDArray[np.int32],
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int32]]:
    """Sorted ``keys`` and their ``slots`` with sorted ``more`` and ``their`` slots inserted in order."""
    at = keys.searchsorted(more)
    return np.insert(keys, at, more), np.insert(slots, at, their)


def _starts_with(packed: npt.NDArray[np.uint64], start: str) -> npt.NDArray[np.bool_]:
    """Which packed texts begin with ``start``."""
    shift = np.uint64(BITS * (MAX_PLATE_LENGTH - len(start)))
    return np.asarray((packed >> shift) == (np.uint64(pack(start)) >> shift))


def _range(keys: npt.NDArray[np.uint64], start: str) -> tuple[int, int]:
    """Where the packed texts that begin with ``start`` lie in sorted ``keys``."""
    low = pack(start)
    high = low | ((1 << (BITS * (MAX_PLATE_LENGTH - len(start)))) - 1)
    return int(keys.searchsorted(np.uint64(low), "left")), int(keys.searchsorted(np.uint64(high), "right"))
