"""A seeded list of South African plates at the density of a real stolen-vehicle list, for the hotlist benchmarks."""

from __future__ import annotations

import random

LETTERS = "ABCDEFGHJKLMNPRSTVWXYZ"
DIGITS = "0123456789"
PROVINCES = ("GP", "MP", "NW", "FS", "EC", "NC", "ZN", "L")


def make_plate(rng: random.Random) -> str:
    """A plate in one of the common South African layouts.

    The mix keeps the list at a density a real stolen-vehicle list could have: 400,000 Western Cape entries in
    a space of 5,000,000 (8 %), the rest far sparser. Short series such as ``CA 12345`` are left out on purpose:
    a million entries would list half of that space, and every read would then be one edit away from several
    listed plates -- a property of such a list, not of the matcher (the lenient figures show that cost).
    """
    kind = rng.random()
    if kind < 0.4:  # Western Cape: CA 123-456
        return rng.choice(("CA", "CY", "CF", "CJ", "CL")) + "".join(rng.choices(DIGITS, k=6))
    if kind < 0.9:  # Gauteng style: ABC 123 GP
        return "".join(rng.choices(LETTERS, k=3)) + "".join(rng.choices(DIGITS, k=3)) + rng.choice(PROVINCES)
    return "ND" + "".join(rng.choices(DIGITS, k=6))  # KwaZulu-Natal: ND 123-456


def plates(count: int, seed: int) -> list[str]:
    """``count`` distinct seeded plates."""
    rng = random.Random(seed)
    found: dict[str, None] = {}
    while len(found) < count:
        found[make_plate(rng)] = None
    return list(found)
