"""A partial reading matched with its hidden characters as gaps (anpr.hotlist.gaps through MatchIndex)."""

from __future__ import annotations

import numpy as np
import pytest

from anpr.hotlist.gaps import AffixIndex, GapRules, fits, placements
from anpr.hotlist.matching import IndexedEntry, ListInfo, MatchIndex, MatchKind, MatchRules, Reading, Strictness
from anpr.hotlist.plates import Folding
from anpr.hotlist.settings import DEFAULT_CONFUSION_CLASSES

LENIENT, STANDARD = 1, 2
FOLDING = Folding(DEFAULT_CONFUSION_CLASSES)


def make_index(targets: dict[int, tuple[int, str]], *, bulk: bool, gaps: GapRules | None = None) -> MatchIndex:
    """Entries {entry_id: (list_id, target)} on a lenient and a standard list; ``bulk`` adds enough filler entries
    for the vectorised build (the affix arrays) instead of the slots added since the last build."""
    index = MatchIndex(MatchRules(FOLDING, min_length_distance_1=6, gaps=gaps or GapRules()))
    index.set_list(ListInfo(LENIENT, "lenient", 10, True, Strictness.LENIENT, 0.0))
    index.set_list(ListInfo(STANDARD, "standard", 50, True, Strictness.STANDARD, 0.0))
    items = [IndexedEntry(entry_id, list_id, target, False) for entry_id, (list_id, target) in targets.items()]
    if bulk:
        items += [IndexedEntry(1000 + i, LENIENT, f"ZZ{i:06d}", False) for i in range(3000)]
    index.upsert(items)
    return index


def test_placements_put_one_or_two_gaps_anywhere() -> None:
    assert placements(2, 1) == [(0,), (1,), (2,)]
    assert placements(2, 2) == [(0,), (1,), (2,), (0, 1), (0, 2), (1, 2)]


@pytest.mark.parametrize(
    ("visible", "gaps", "target", "expected"),
    [
        ("T2905", 1, "PJT2905", True),  # the first two characters beyond the frame's left edge
        ("CA1234", 1, "CA123456", True),  # the last two beyond the right edge
        ("CA12456", 1, "CA123456", True),  # one character under a bar
        ("C12346", 1, "CA123456", False),  # two separate runs need two gaps
        ("C12346", 2, "CA123456", True),
        ("CA123456", 1, "CA123456", False),  # a gap hides at least one character
        ("T2905", 1, "PJT29051", False),  # the visible characters keep their order and adjacency
        ("CA12", 1, "CA1234567", False),  # a gap is at most max_gap characters (4 here)
    ],
)
def test_a_plate_fits_a_partial_reading_with_its_hidden_runs_as_gaps(
    visible: str, gaps: int, target: str, expected: bool
) -> None:
    assert fits(visible, target, gaps, 4) is expected


@pytest.mark.parametrize("bulk", [False, True])
def test_a_partial_reading_hits_the_plate_it_is_part_of(bulk: bool) -> None:
    index = make_index({1: (LENIENT, "PJT2905"), 2: (STANDARD, "CA123456")}, bulk=bulk)
    # Two characters beyond the frame's edge: two edits, too far for edit distance; a gap fits.
    [hit] = index.match([Reading("T2905", 0.9)], hidden_runs=1)
    assert (hit.entry_id, hit.kind, hit.matched_text, hit.meets_strictness) == (1, MatchKind.PARTIAL, "T2905", True)
    assert hit.score == pytest.approx(0.6 * 0.9)
    # On a standard list the same kind of hit is returned to those who ask for weak hits, and does not alert.
    [weak] = index.match([Reading("CA1234", 0.9)], hidden_runs=1, include_weak=True)
    assert (weak.entry_id, weak.kind, weak.meets_strictness) == (2, MatchKind.PARTIAL, False)
    assert index.match([Reading("CA1234", 0.9)], hidden_runs=1) == []
    # Read whole, the same text is not that plate.
    assert index.match([Reading("T2905", 0.9)], include_weak=True) == []
    # OCR confusions fold as in every other match: O for 0, I for 1.
    assert [h.entry_id for h in index.match([Reading("T29O5", 0.9)], hidden_runs=1)] == [1]


@pytest.mark.parametrize("bulk", [False, True])
def test_a_stronger_hit_of_the_same_entry_wins(bulk: bool) -> None:
    index = make_index({1: (LENIENT, "CA123456")}, bulk=bulk)
    # One character hidden: within edit distance 1, which scores above a gap.
    [hit] = index.match([Reading("CA12356", 0.9)], hidden_runs=1)
    assert hit.kind is MatchKind.EDIT_DISTANCE


def test_a_reading_that_fits_several_entries_alerts_on_none() -> None:
    index = make_index({1: (LENIENT, "CA123456"), 2: (LENIENT, "CA123478"), 3: (LENIENT, "ND123456")}, bulk=False)
    # CA1234 + two hidden characters fits two listed plates: it points at no one vehicle.
    assert index.match([Reading("CA1234", 0.9)], hidden_runs=1) == []
    weak = index.match([Reading("CA1234", 0.9)], hidden_runs=1, include_weak=True)
    assert sorted(h.entry_id for h in weak) == [1, 2]
    assert not any(h.meets_strictness for h in weak)
    # With one more visible character only one fits, and it alerts.
    assert [h.entry_id for h in index.match([Reading("CA12345", 0.9)], hidden_runs=1)] == [1]


def test_too_few_visible_characters_or_gaps_switched_off_match_nothing() -> None:
    targets = {1: (LENIENT, "PJT2905")}
    assert make_index(targets, bulk=False).match([Reading("2905", 0.9)], hidden_runs=1, include_weak=True) == []
    off = make_index(targets, bulk=False, gaps=GapRules(min_visible=0))
    assert off.match([Reading("T2905", 0.9)], hidden_runs=1, include_weak=True) == []


def test_two_hidden_runs_place_two_gaps() -> None:
    index = make_index({1: (LENIENT, "CA123456")}, bulk=True)
    assert index.match([Reading("C12346", 0.9)], hidden_runs=1, include_weak=True) == []
    [hit] = index.match([Reading("C12346", 0.9)], hidden_runs=2)
    assert (hit.entry_id, hit.kind) == (1, MatchKind.PARTIAL)


@pytest.mark.parametrize("bulk", [False, True])
def test_removed_and_expired_entries_are_not_hit(bulk: bool) -> None:
    index = make_index({1: (LENIENT, "PJT2905")}, bulk=bulk)
    index.upsert([IndexedEntry(2, LENIENT, "PKT2905", False, expires_at=100.0)])
    assert [h.entry_id for h in index.match([Reading("T2905", 0.9)], hidden_runs=1, now=50.0)] == []  # two fit
    assert [h.entry_id for h in index.match([Reading("T2905", 0.9)], hidden_runs=1, now=200.0)] == [1]
    index.remove([1])
    assert index.match([Reading("T2905", 0.9)], hidden_runs=1, now=200.0, include_weak=True) == []


def test_candidates_hold_every_fit_unless_a_placement_points_at_too_many_plates() -> None:
    texts = [f"CA{i:06d}" for i in range(500)] + ["PJT2905"]
    folded = np.array([t.encode() for t in texts], dtype="S10")
    affixes = AffixIndex(folded, np.arange(len(texts), dtype=np.int64))
    for visible, gaps in (("CA0001", 1), ("C00014", 2), ("T2905", 1)):
        truth = {slot for slot, text in enumerate(texts) if fits(visible, text, gaps, 4)}
        assert truth
        assert truth <= set(affixes.candidates(visible, gaps, GapRules(), folded))
    assert 150 in affixes.candidates("CA0001", 1, GapRules(), folded)  # CA000150: two hidden after CA0001
    # The head CA0001 begins 100 listed plates: with at most 50 candidates per placement that placement is too
    # unspecific to follow, and its plates are not candidates.
    assert 150 not in affixes.candidates("CA0001", 1, GapRules(max_candidates=50), folded)
    assert affixes.candidates("T2905", 1, GapRules(max_candidates=50), folded) == [500]
    assert len(AffixIndex.empty()) == 0
    assert AffixIndex.empty().candidates("T2905", 1, GapRules(), folded) == []
