"""Matching rules of the in-memory index, table-driven, plus normalisation and pattern validation."""

from __future__ import annotations

import numpy as np
import pytest

from anpr.hotlist.matching import (
    EntryColumns,
    IndexedEntry,
    ListInfo,
    MatchIndex,
    MatchKind,
    MatchRules,
    Reading,
    Strictness,
)
from anpr.hotlist.patterns import InvalidPattern, normalise_pattern
from anpr.hotlist.plates import Folding, InvalidPlate, deletion_keys, normalise_plate, pack
from anpr.hotlist.settings import DEFAULT_CONFUSION_CLASSES

RULES = MatchRules(Folding(DEFAULT_CONFUSION_CLASSES), min_length_distance_1=6)
LENIENT, STANDARD, EXACT = 1, 2, 3


def make_index(entries: list[tuple[int, int, str]], *, bulk: bool = False) -> MatchIndex:
    """Lists 1 (lenient), 2 (standard), 3 (exact); entries as (entry_id, list_id, target)."""
    index = MatchIndex(RULES)
    index.set_list(ListInfo(LENIENT, "lenient", 10, True, Strictness.LENIENT, 0.0))
    index.set_list(ListInfo(STANDARD, "standard", 50, True, Strictness.STANDARD, 0.0))
    index.set_list(ListInfo(EXACT, "exact", 90, True, Strictness.EXACT, 0.0))
    items = [IndexedEntry(e, h, t, "*" in t or "?" in t) for e, h, t in entries]
    if bulk:  # enough filler entries to go through the vectorised numpy build rather than the delta dict
        items += [IndexedEntry(1000 + i, LENIENT, f"ZZ{i:06d}", False) for i in range(3000)]
    index.upsert(items)
    return index


# reading, alternatives, entry target, expected kind (None: no hit), distance, confusions
CASES = [
    ("CA123456", (), "CA123456", MatchKind.EXACT, 0, 0),
    ("CA12345G", (), "CA123456", MatchKind.CONFUSION, 0, 1),
    ("CAI23456", (), "CA123456", MatchKind.CONFUSION, 0, 1),
    ("C4123456", (), "CA123456", MatchKind.EDIT_DISTANCE, 1, 0),
    ("CA1234567", (), "CA123456", MatchKind.EDIT_DISTANCE, 1, 0),
    ("CA12356", (), "CA123456", MatchKind.EDIT_DISTANCE, 1, 0),
    ("CA12346G", (), "CA123456", MatchKind.EDIT_DISTANCE, 1, 0),  # substitution plus a confusion: folded distance 1
    ("CA1234", (), "CA123456", None, 0, 0),
    ("XY98765", (), "CA123456", None, 0, 0),
    ("ABC12", (), "ABC13", None, 0, 0),  # 5 characters: no edit distance allowed
    ("CA000456", (), "CA*456", MatchKind.WILDCARD, 0, 0),
    ("CA456", (), "CA*456", MatchKind.WILDCARD, 0, 0),
    ("CA12X456", (), "CA12?456", MatchKind.WILDCARD, 0, 0),
    ("CA12XY456", (), "CA12?456", None, 0, 0),
    ("CAOOO456", (), "CA*456", MatchKind.WILDCARD, 0, 0),
    ("CAXXX45G", (), "CA*456", MatchKind.WILDCARD, 0, 1),
    ("ZZ999999", ("CA123456",), "CA123456", MatchKind.EXACT, 0, 0),
]


@pytest.mark.parametrize("bulk", [False, True], ids=["delta", "bulk"])
@pytest.mark.parametrize(("reading", "alternatives", "target", "kind", "distance", "confusions"), CASES)
def test_match_kinds(
    reading: str,
    alternatives: tuple[str, ...],
    target: str,
    kind: MatchKind | None,
    distance: int,
    confusions: int,
    bulk: bool,
) -> None:
    index = make_index([(1, LENIENT, target)], bulk=bulk)
    readings = [Reading(reading, 1.0), *(Reading(a, 0.5) for a in alternatives)]
    hits = [h for h in index.match(readings, include_weak=True) if h.entry_id == 1]
    if kind is None:
        assert hits == []
        return
    assert len(hits) == 1
    hit = hits[0]
    assert (hit.kind, hit.edit_distance, hit.confusion_count) == (kind, distance, confusions)
    assert hit.alternative_rank == (1 if alternatives else 0)
    assert 0 < hit.score <= 1


@pytest.mark.parametrize(
    ("reading", "alternatives", "list_id", "meets"),
    [
        ("CA123456", (), EXACT, True),
        ("CA12345G", (), EXACT, False),  # confusion is not exact
        ("ZZ000000", ("CA123456",), EXACT, False),  # an alternative reading is not the best reading
        ("CA12345G", (), STANDARD, True),
        ("ZZ000000", ("CA123456",), STANDARD, True),
        ("CA1234567", (), STANDARD, False),  # edit distance needs a lenient list
        ("CA1234567", (), LENIENT, True),
    ],
)
def test_strictness_decides_which_hits_alert(
    reading: str, alternatives: tuple[str, ...], list_id: int, meets: bool
) -> None:
    index = make_index([(1, list_id, "CA123456")])
    readings = [Reading(reading), *(Reading(a, 0.6) for a in alternatives)]
    weak = index.match(readings, include_weak=True)
    assert [h.meets_strictness for h in weak] == [meets]
    assert len(index.match(readings)) == (1 if meets else 0)


@pytest.mark.parametrize(
    ("reading", "list_id", "meets"),
    [
        ("CA12345", EXACT, False),  # part of a plate equal to another plate is no exact hit
        ("CA12345", STANDARD, False),
        ("CA12345", LENIENT, True),
        ("CA12356", LENIENT, True),  # one character hidden from "CA123456": an edit, on a lenient list only
        ("CA12356", STANDARD, False),
    ],
)
def test_a_partial_reading_alerts_only_on_lenient_lists(reading: str, list_id: int, meets: bool) -> None:
    index = make_index([(1, list_id, "CA12345" if reading == "CA12345" else "CA123456")])
    weak = index.match([Reading(reading, 0.9)], include_weak=True, hidden_runs=1)
    assert [h.meets_strictness for h in weak] == [meets]
    assert len(index.match([Reading(reading, 0.9)], hidden_runs=1)) == (1 if meets else 0)
    # The same text read whole keeps its kind's strictness.
    whole = index.match([Reading(reading, 0.9)], include_weak=True)
    assert [h.kind for h in weak] == [h.kind for h in whole]


def test_scores_order_hits_strongest_first() -> None:
    index = make_index([(1, LENIENT, "CA123456"), (2, LENIENT, "CA12345G"), (3, LENIENT, "CA123457")])
    hits = index.match([Reading("CA123456", 0.9)])
    assert [h.entry_id for h in hits] == [1, 2, 3]
    assert hits[0].score == pytest.approx(0.9)
    assert hits[0].score > hits[1].score > hits[2].score


def test_min_match_score_and_inactive_and_expired_entries() -> None:
    index = make_index([(1, LENIENT, "CA123456")])
    index.set_list(ListInfo(LENIENT, "lenient", 10, True, Strictness.LENIENT, 0.8))
    assert index.match([Reading("CA1234567")]) == []  # 0.7 < 0.8
    assert len(index.match([Reading("CA123456")])) == 1
    index.set_list(ListInfo(LENIENT, "lenient", 10, False, Strictness.LENIENT, 0.0))
    assert index.match([Reading("CA123456")], include_weak=True) == []
    index.set_list(ListInfo(LENIENT, "lenient", 10, True, Strictness.LENIENT, 0.0))
    index.upsert([IndexedEntry(1, LENIENT, "CA123456", False, expires_at=1000.0)])
    assert index.match([Reading("CA123456")], now=999.0)
    assert index.match([Reading("CA123456")], now=1000.0) == []


def test_list_filter_remove_reload_and_drop() -> None:
    index = make_index([(1, LENIENT, "CA123456"), (2, STANDARD, "CA123456")], bulk=True)
    assert {h.entry_id for h in index.match([Reading("CA123456")])} == {1, 2}
    assert {h.entry_id for h in index.match([Reading("CA123456")], hotlists={STANDARD})} == {2}
    index.remove([1])
    assert {h.entry_id for h in index.match([Reading("CA123456")])} == {2}
    index.load_list(
        ListInfo(STANDARD, "standard", 50, True, Strictness.STANDARD, 0.0), [IndexedEntry(7, 2, "GP1", False)]
    )
    assert index.match([Reading("CA123456")]) == []
    assert [h.entry_id for h in index.match([Reading("GP1")])] == [7]
    index.drop_list(STANDARD)
    assert index.match([Reading("GP1")]) == []
    assert len(index) == 3000


def test_columnar_load_matches_like_entry_by_entry_and_survives_clone_remove_and_rebuild() -> None:
    entries = [(1, STANDARD, "CA123456"), (2, STANDARD, "CA*999"), (3, STANDARD, "GP12AB34")]
    filler = [(1000 + i, STANDARD, f"ZZ{i:06d}") for i in range(3000)]
    columns = EntryColumns(
        np.array([e for e, _, _ in entries + filler], dtype=np.int64),
        np.array([h for _, h, _ in entries + filler], dtype=np.int64),
        np.array([t for _, _, t in entries + filler], dtype="S20"),
        np.array(["*" in t for _, _, t in entries + filler]),
        np.array([np.inf] * (len(entries) + len(filler))),
    )
    index = make_index([])
    index.load_list_columns(ListInfo(STANDARD, "standard", 50, True, Strictness.STANDARD, 0.0), columns)
    queries = [Reading("CA12345G"), Reading("CA000999"), Reading("GP12A834"), Reading("ZZ000042")]
    assert [[h.entry_id for h in index.match([q])] for q in queries] == [[1], [2], [3], [1042]]
    twin = index.clone()
    twin.remove([1, 2])
    twin.upsert([IndexedEntry(1, STANDARD, "CA123456", False)])  # a known id comes back: one entry, not two
    assert len(twin) == 3002
    assert [[h.entry_id for h in twin.match([q])] for q in queries] == [[1], [], [3], [1042]]
    assert [h.entry_id for h in index.match([queries[1]])] == [2]  # the original is untouched
    twin.remove(range(1100, 4000))
    # A bulk of new entries rebuilds the arrays: removed slots are compacted away, ids map to their new slots.
    twin.upsert([IndexedEntry(10_000 + i, STANDARD, f"YY{i:06d}", False) for i in range(2100)])
    assert len(twin) == 102 + 2100
    assert [[h.entry_id for h in twin.match([q])] for q in queries] == [[1], [], [3], [1042]]
    assert [h.entry_id for h in twin.match([Reading("YY002099")])] == [12_099]
    twin.remove([1042])
    assert twin.match([queries[3]]) == []


def _plates(ids: range, prefix: str) -> EntryColumns:
    return EntryColumns(
        np.array(ids, dtype=np.int64),
        np.full(len(ids), LENIENT, dtype=np.int64),
        np.array([f"{prefix}{i:06d}" for i in ids], dtype="S20"),
        np.zeros(len(ids), dtype=np.bool_),
        np.full(len(ids), np.inf),
    )


def test_changes_said_to_fit_in_place_never_rebuild_the_arrays() -> None:
    # A rebuild takes seconds at a million entries and would stall every match on the event loop, so the index
    # must say beforehand which changes may be applied there. Steady churn of 100 entries in and 100 out piles up
    # dead slots and delta keys until a rebuild is due: that change, and only changes like it, go to a clone.
    index = make_index([])
    index.upsert_columns(_plates(range(10_000, 13_000), "ZZ"))
    live = list(range(10_000, 13_000))
    rng = np.random.default_rng(3)
    in_place = to_clone = 0
    for step in range(150):
        removed = [live.pop(int(rng.integers(len(live)))) for _ in range(100)]
        added = _plates(range(100_000 + 100 * step, 100_100 + 100 * step), "YY")
        live += added.entry_ids.tolist()
        if index.in_place(removed, added):
            before = index.rebuilds
            columns = index._columns.entry_ids  # growing the columns copies them all: never in place either
            index.remove(removed)
            index.upsert_columns(added)
            assert index.rebuilds == before
            assert index._columns.entry_ids is columns
            in_place += 1
        else:
            twin = index.clone()
            twin.remove(removed)
            twin.upsert_columns(added)
            index.adopt(twin)
            to_clone += 1
    assert in_place > 100
    assert to_clone >= 1
    assert len(index) == len(live) == 3000
    exact = [(h.entry_id, h.target) for h in index.match([Reading("YY114999")]) if h.kind == MatchKind.EXACT]
    assert exact == [(114_999, "YY114999")]
    gone = sorted(set(range(10_000, 13_000)) - set(live))[0]
    assert all(h.kind != MatchKind.EXACT for h in index.match([Reading(f"ZZ{gone:06d}")]))
    assert not index.in_place([], _plates(range(200_000, 200_257), "XX"))  # many entries: a clone whatever it holds


def test_a_pattern_changed_among_many_is_left_to_a_clone() -> None:
    # A change of a pattern recompiles the screen of every pattern (about 40 us each): among many, not in place.
    index = make_index([(1, LENIENT, "CA123456")] + [(100 + i, LENIENT, f"P{i:02d}*9") for i in range(100)])
    nothing = _plates(range(0), "ZZ")
    one_pattern = EntryColumns(
        np.array([500], dtype=np.int64),
        np.array([LENIENT], dtype=np.int64),
        np.array(["Q*77"], dtype="S20"),
        np.array([True]),
        np.array([np.inf]),
    )
    assert not index.in_place([100], nothing)
    assert not index.in_place([], one_pattern)
    assert index.in_place([1], nothing)
    few = make_index([(1, LENIENT, "CA123456"), (100, LENIENT, "P00*9")])
    assert few.in_place([100], nothing)


def test_edit_distance_two_when_configured() -> None:
    rules = MatchRules(Folding(DEFAULT_CONFUSION_CLASSES), min_length_distance_1=6, min_length_distance_2=8)
    index = MatchIndex(rules)
    index.set_list(ListInfo(1, "l", 1, True, Strictness.LENIENT, 0.0))
    index.upsert(
        [IndexedEntry(1, 1, "CA123456", False)] + [IndexedEntry(10 + i, 1, f"XY{i:06d}", False) for i in range(2500)]
    )
    hits = index.match([Reading("CA193496")])
    assert [(h.entry_id, h.edit_distance) for h in hits] == [(1, 2)]
    assert index.match([Reading("CA1934")]) == []


@pytest.mark.parametrize(
    ("given", "expected"), [("ca 123-456", "CA123456"), ("GP-1", "GP1"), ("  nd 12345 ", "ND12345")]
)
def test_plate_normalisation(given: str, expected: str) -> None:
    assert normalise_plate(given) == expected


@pytest.mark.parametrize("given", ["", "A", "CA12345678901", "CA_123", "CA'; DROP TABLE x;--", "CÄ123", "CA\x00123"])
def test_malformed_plates_are_refused(given: str) -> None:
    with pytest.raises(InvalidPlate):
        normalise_plate(given)


@pytest.mark.parametrize(("given", "expected"), [("ca*456", "CA*456"), ("CA**456", "CA*456"), ("ca12?456", "CA12?456")])
def test_pattern_normalisation(given: str, expected: str) -> None:
    assert normalise_pattern(given) == expected


@pytest.mark.parametrize("given", ["*", "C*?", "CA%456*", "AB*" + "C" * 30, "CA123456", "A?*B"])
def test_malformed_patterns_are_refused(given: str) -> None:
    with pytest.raises(InvalidPattern):
        normalise_pattern(given)


def test_deletion_keys_are_packed_deletions() -> None:
    assert deletion_keys("ABC", 1) == {pack("ABC"), pack("BC"), pack("AC"), pack("AB")}
    assert pack("AB") != pack("AB0")
