"""Plate text comparison for associating reads: edit distance and a similarity in [0, 1]."""

from __future__ import annotations


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions and substitutions each cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def similarity(a: str, b: str) -> float:
    """1 for equal texts, 0 for completely different ones; 0.5 (no evidence) when either is empty."""
    if not a or not b:
        return 0.5
    return 1.0 - edit_distance(a, b) / max(len(a), len(b))
