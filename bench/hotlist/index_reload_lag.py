"""Event-loop stall while a hotlist index of 1,000,000 entries changes.

A ticker sleeping 10 ms measures the worst extra delay the event loop suffers while the index changes: what every
Match, ReportReads and health check on that replica would wait. Each change is applied two ways in the same run:

1. **Reloading the whole list** (start-up, a REPLACE import, a replica catching up): inline on the event loop,
   against the shipped way (a copy rebuilt in a worker thread, then swapped in).
2. **Changes of some entries** (an upsert, a delta import, deletions): the rule up to 2026-12-07 (changes of up to
   20,000 entries applied on the event loop, where one of more than 2,000 new plates rebuilds the key arrays),
   against the shipped :func:`anpr.hotlist.sync.apply_changes` (in place only when
   :meth:`MatchIndex.in_place` says the change is small and rebuilds nothing; otherwise a clone in a thread).
3. **Steady churn**: many small changes (125 entries in, 125 out): 2,100 of them make the dead slots call for one
   rebuild under the rule until 2026-12-07; the shipped index rebuilds its delta into the arrays about every 90.
4. **Dropping the list**.

    python bench/hotlist/index_reload_lag.py --entries 1000000 [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import string
import time
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from anpr.hotlist.matching import EntryColumns, ListInfo, MatchIndex, MatchRules, Strictness
from anpr.hotlist.plates import Folding
from anpr.hotlist.settings import HotlistSettings
from anpr.hotlist.sync import _release_memory, _swap_in, apply_changes

INFO = ListInfo(1, "big", 50, True, Strictness.LENIENT, 0.0)
# The rule until 2026-12-07: changes of up to this many entries were applied on the event loop.
OLD_IN_PLACE = 20_000


def make_entries(count: int, seed: int, first_id: int = 0) -> EntryColumns:
    """Seeded plates of two letters and six digits, as the columns a list load fetches."""
    rng = random.Random(seed)
    letters, digits = string.ascii_uppercase, string.digits
    plates = ["".join(rng.choices(letters, k=2)) + "".join(rng.choices(digits, k=6)) for _ in range(count)]
    return EntryColumns(
        np.arange(first_id, first_id + count, dtype=np.int64),
        np.ones(count, dtype=np.int64),
        np.array(plates, dtype="S20"),
        np.zeros(count, dtype=np.bool_),
        np.full(count, np.inf),
    )


async def lag_during(change: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """(seconds the change took, worst event-loop lag meanwhile in seconds)."""
    lags: list[float] = []
    running = True

    async def ticker() -> None:
        while running:
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - started - 0.01)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    await change()
    took = time.perf_counter() - started
    running = False
    await task
    return took, max(lags)


def new_index() -> MatchIndex:
    return MatchIndex(MatchRules(Folding(HotlistSettings.model_fields["confusion_classes"].default)))


async def old_rule(index: MatchIndex, removed: list[int], changed: EntryColumns) -> None:
    """How the sync applied a list's changes until 2026-12-07."""
    if len(changed.entry_ids) > OLD_IN_PLACE:
        await _swap_in(index, lambda staged: staged.change(removed, changed))
    else:
        index.change(removed, changed)


async def shipped_rule(index: MatchIndex, removed: list[int], changed: EntryColumns) -> None:
    """How the sync applies them now (:meth:`anpr.hotlist.sync.IndexSync.refresh`)."""
    if await apply_changes(index, removed, changed):
        await _release_memory()


Rule = Callable[[MatchIndex, list[int], EntryColumns], Awaitable[None]]
RULES: dict[str, Rule] = {"before": old_rule, "shipped": shipped_rule}


def row(took: float, lag: float, index: MatchIndex) -> dict[str, Any]:
    return {"seconds": round(took, 3), "worst_lag_ms": round(lag * 1000, 1), "entries_after": len(index)}


async def reload_rows(entries: EntryColumns) -> dict[str, Any]:
    inline, shipped = new_index(), new_index()

    async def on_the_loop() -> None:
        inline.load_list_columns(INFO, entries)

    async def in_a_thread() -> None:
        await _swap_in(shipped, lambda staged: staged.load_list_columns(INFO, entries))
        await _release_memory()

    return {
        "inline": row(*await lag_during(on_the_loop), inline),
        "shipped": row(*await lag_during(in_a_thread), shipped),
    }


class Churn:
    """A list's live entry ids and seeded changes to them: some entries removed, as many new ones added."""

    def __init__(self, count: int) -> None:
        self.rng = random.Random(5)
        self.live = list(range(count))
        self.next_id = count

    def draw(self, size: int, seed: int) -> tuple[list[int], EntryColumns]:
        removed = [self.live.pop(self.rng.randrange(len(self.live))) for _ in range(size)]
        added = make_entries(size, seed=seed, first_id=self.next_id)
        self.live.extend(range(self.next_id, self.next_id + size))
        self.next_id += size
        return removed, added


async def change_rows(name: str, entries: EntryColumns, sizes: list[int], churn: int) -> dict[str, Any]:
    """One rule: changes of ``size`` new entries and as many removed, then ``churn`` changes of 125 in / 125 out,
    then the list dropped, all on one index of ``entries``."""
    rule = RULES[name]
    index = new_index()
    await _swap_in(index, lambda staged: staged.load_list_columns(INFO, entries))
    changes = Churn(len(entries.entry_ids))
    rows: dict[str, Any] = {}
    for size in sizes:
        removed, added = changes.draw(size, seed=size)
        rebuilds = index.rebuilds
        took, lag = await lag_during(lambda: rule(index, removed, added))  # noqa: B023 - awaited at once
        rows[f"change of {size} in, {size} out"] = row(took, lag, index) | {"rebuilds": index.rebuilds - rebuilds}
    steady = [changes.draw(125, seed=100_000 + k) for k in range(churn)]
    rebuilds = index.rebuilds

    async def churning() -> None:
        for removed, added in steady:
            await rule(index, removed, added)
            await asyncio.sleep(0)  # the sync worker awaits its database between changes

    took, lag = await lag_during(churning)
    rows[f"{churn} changes of 125 in, 125 out"] = row(took, lag, index) | {"rebuilds": index.rebuilds - rebuilds}

    async def drop() -> None:
        if name == "before":
            index.drop_list(INFO.hotlist_id)
        elif await _swap_in(index, lambda staged: staged.drop_list(INFO.hotlist_id)):
            await _release_memory()

    took, lag = await lag_during(drop)
    rows["list dropped"] = row(took, lag, index)
    return rows


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    entries = make_entries(args.entries, seed=1)
    result: dict[str, Any] = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "entries": args.entries,
        "reload": await reload_rows(entries),
    }
    print(json.dumps(result["reload"], indent=1))
    result["changes"] = {name: await change_rows(name, entries, args.sizes, args.churn) for name in RULES}
    print(json.dumps(result["changes"], indent=1))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1, 100, 1_000, 2_500, 10_000])
    parser.add_argument("--churn", type=int, default=2_100, help="changes of 125 in / 125 out (2,100: one rebuild)")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
