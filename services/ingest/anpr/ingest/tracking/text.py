"""Plate text comparison for associating reads: edit distance and a similarity in [0, 1]."""

from __future__ import annotations

from rapidfuzz.distance import Levenshtein


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions and substitutions each cost 1)."""
    return int(Levenshtein.distance(a, b))


def similarity(a: str, b: str) -> float:
    """1 for equal texts, 0 for completely different ones; 0.5 (no evidence) when either is empty."""
    if not a or not b:
        return 0.5
    return 1.0 - edit_distance(a, b) / max(len(a), len(b))
