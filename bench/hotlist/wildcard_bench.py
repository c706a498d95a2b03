"""Wildcard matching cost against the number of wildcard entries (issue 19: 1,000 patterns made reads 30x slower).

Builds a :class:`MatchIndex` with 100,000 plates and N wildcard patterns (seeded), then times ``match`` of
readings with two alternatives each (as ReportReads does per event), one call at a time on one core.

    python bench/hotlist/wildcard_bench.py --patterns 0 100 1000 5000 --readings 2000
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from anpr.hotlist.matching import IndexedEntry, ListInfo, MatchIndex, MatchRules, Reading, Strictness
from anpr.hotlist.plates import Folding
from anpr.hotlist.settings import DEFAULT_CONFUSION_CLASSES

CHARS = "ABCDEFGHJKLMNPRSTVWXYZ0123456789"


def plate(rng: random.Random) -> str:
    return "".join(rng.choice(CHARS) for _ in range(rng.choice((6, 7, 8))))


def pattern(rng: random.Random) -> str:
    text = list(plate(rng))
    for _ in range(rng.choice((1, 2))):
        text[rng.randrange(len(text))] = rng.choice("*?")
    out = "".join(text).replace("**", "*")
    return out if sum(c not in "*?" for c in out) >= 3 and ("*" in out or "?" in out) else "CA*" + out[:3]


def run(patterns: int, readings: int, seed: int = 19) -> dict[str, float]:
    rng = random.Random(seed)
    index = MatchIndex(MatchRules(Folding(DEFAULT_CONFUSION_CLASSES)))
    info = ListInfo(1, "stolen", 50, True, Strictness.STANDARD, 0.0)
    entries = [IndexedEntry(i, 1, plate(rng), False) for i in range(100_000)]
    targets = {pattern(rng) for _ in range(patterns)}
    entries += [IndexedEntry(200_000 + i, 1, t, True) for i, t in enumerate(sorted(targets))]
    index.load_list(info, entries)
    queries = [[Reading(plate(rng), 0.9), Reading(plate(rng), 0.5), Reading(plate(rng), 0.3)] for _ in range(readings)]
    times = []
    for query in queries:
        started = time.perf_counter()
        index.match(query)
        times.append(time.perf_counter() - started)
    times.sort()
    return {
        "patterns": len(targets),
        "p50_ms": statistics.median(times) * 1e3,
        "p99_ms": times[int(0.99 * len(times))] * 1e3,
        "per_100_events_s": sum(times) / len(times) * 100,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patterns", type=int, nargs="+", default=[0, 100, 1000, 5000])
    parser.add_argument("--readings", type=int, default=2000)
    args = parser.parse_args()
    for count in args.patterns:
        print(json.dumps(run(count, args.readings)))


if __name__ == "__main__":
    main()
