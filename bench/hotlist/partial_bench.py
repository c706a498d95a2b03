"""Partial readings against a hotlist: how often the wanted entry is hit, and how many other entries are.

A partial reading (``hidden_characters`` >= 1) is a plate with one run of characters unseen: a plate running off
the frame's left or right edge loses its first or last characters, a bar or a tow hitch hides one or two inside.
The reading carries the visible text and the number of runs, not their positions. This bench builds two
:class:`MatchIndex` of the same seeded list of South African plates (``hotlist_bench.make_plate``) in one lenient
list, one with gap matching off (``GapRules(min_visible=0)``: edit distance alone, the matching before
2026-12-07) and one with the shipped rules, and matches in each, one call at a time on one core:

- partial readings of listed plates, by how they were cut: the entry wanted is hit (and would alert), and the
  other entries hit besides;
- the same cuts of plates that are not on the list: every hit is a false hit;
- whole readings of random plates, to show gap matching costs ordinary readings nothing.

    python bench/hotlist/partial_bench.py [--entries 1000000] [--readings 2000] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from anpr.hotlist.gaps import GapRules
from anpr.hotlist.matching import IndexedEntry, ListInfo, MatchIndex, MatchRules, Reading, Strictness
from anpr.hotlist.plates import Folding
from anpr.hotlist.settings import DEFAULT_CONFUSION_CLASSES

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))  # the seeded list lives with the tests' helpers
from testkit.seeded_plates import make_plate, plates

Cut = Callable[[str, random.Random], str]


def left(k: int) -> Cut:
    return lambda plate, rng: plate[k:]


def right(k: int) -> Cut:
    return lambda plate, rng: plate[:-k]


def inside(k: int) -> Cut:
    def cut(plate: str, rng: random.Random) -> str:
        start = rng.randrange(1, len(plate) - k)
        return plate[:start] + plate[start + k :]

    return cut


CUTS: dict[str, Cut] = {
    **{f"left edge, {k} hidden": left(k) for k in (1, 2, 3)},
    **{f"right edge, {k} hidden": right(k) for k in (1, 2, 3)},
    **{f"bar inside, {k} hidden": inside(k) for k in (1, 2)},
}


def build(entries: list[str], gaps: GapRules) -> MatchIndex:
    index = MatchIndex(MatchRules(Folding(DEFAULT_CONFUSION_CLASSES), gaps=gaps))
    info = ListInfo(1, "stolen-vehicles", 90, True, Strictness.LENIENT, 0.0)
    index.load_list(info, (IndexedEntry(i, 1, text, False) for i, text in enumerate(entries)))
    return index


def measure(index: MatchIndex, readings: list[tuple[str, int | None]], hidden_runs: int) -> dict[str, Any]:
    """Per reading (text, entry id wanted or None): the wanted entry hit (alerting), other entries hit, time."""
    wanted = alerts = others = 0
    seconds = []
    for text, entry_id in readings:
        started = time.perf_counter()
        hits = index.match([Reading(text, 0.9)], hidden_runs=hidden_runs)
        seconds.append(time.perf_counter() - started)
        wanted += any(h.entry_id == entry_id for h in hits)
        alerts += any(h.entry_id == entry_id and h.meets_strictness for h in hits)
        others += sum(h.entry_id != entry_id for h in hits)
    seconds.sort()
    n = max(len(readings), 1)
    return {
        "readings": len(readings),
        "wanted_hit": round(wanted / n, 4),
        "wanted_alerts": round(alerts / n, 4),
        "other_entries_hit_per_reading": round(others / n, 4),
        "p50_ms": round(statistics.median(seconds) * 1e3, 4) if seconds else None,
        "p99_ms": round(seconds[int(0.99 * (len(seconds) - 1))] * 1e3, 4) if seconds else None,
    }


def run(entries: int, count: int, seed: int = 17) -> dict[str, Any]:
    listed = plates(entries, seed)
    on_list = set(listed)
    rng = random.Random(seed + 2)
    started = time.perf_counter()
    before, shipped = build(listed, GapRules(min_visible=0)), build(listed, GapRules())
    built = time.perf_counter() - started
    report: dict[str, Any] = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "entries": entries,
        "rules": GapRules().__dict__,
        "seconds_to_build_both": round(built, 1),
        "cuts": {},
    }
    wanted_ids = {text: i for i, text in enumerate(listed)}
    for name, cut in CUTS.items():
        chosen = [rng.choice(listed) for _ in range(count)]
        partial: list[tuple[str, int | None]] = [(cut(p, rng), wanted_ids[p]) for p in chosen]
        strangers: list[tuple[str, int | None]] = []
        while len(strangers) < count:
            plate = make_plate(rng)
            if plate not in on_list:
                strangers.append((cut(plate, rng), None))
        report["cuts"][name] = {
            variant: {"listed": measure(index, partial, 1), "not_listed": measure(index, strangers, 1)}
            for variant, index in (("before", before), ("shipped", shipped))
        }
    whole: list[tuple[str, int | None]] = [(make_plate(rng), None) for _ in range(count)]
    report["whole_readings"] = {
        variant: measure(index, whole, 0) for variant, index in (("before", before), ("shipped", shipped))
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--readings", type=int, default=2000, help="readings per cut and variant")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    report = run(args.entries, args.readings)
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
