"""Event-loop stall while a hotlist of 1,000,000 entries is reloaded into the match index.

Compares the reload done inline on the event loop with the shipped way (a copy rebuilt in a worker thread, then
swapped in): a ticker sleeping 10 ms measures the worst extra delay the loop suffered meanwhile, which is what
every Match, ReportReads and health check on that replica would wait.

    python bench/hotlist/index_reload_lag.py --entries 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import string
import time

import numpy as np

from anpr.hotlist.matching import EntryColumns, ListInfo, MatchIndex, MatchRules, Strictness
from anpr.hotlist.plates import Folding
from anpr.hotlist.settings import HotlistSettings
from anpr.hotlist.sync import _reloaded


def make_entries(count: int, seed: int) -> EntryColumns:
    """Seeded plates of two letters and six digits, as the columns a list load fetches."""
    rng = random.Random(seed)
    letters, digits = string.ascii_uppercase, string.digits
    plates = ["".join(rng.choices(letters, k=2)) + "".join(rng.choices(digits, k=6)) for _ in range(count)]
    return EntryColumns(
        np.arange(count, dtype=np.int64),
        np.ones(count, dtype=np.int64),
        np.array(plates, dtype="S20"),
        np.zeros(count, dtype=np.bool_),
        np.full(count, np.inf),
    )


async def measure(entries: EntryColumns, *, inline: bool) -> tuple[float, float]:
    """(reload seconds, worst loop lag seconds)."""
    folding = Folding(HotlistSettings.model_fields["confusion_classes"].default)
    index = MatchIndex(MatchRules(folding))
    info = ListInfo(1, "big", 50, True, Strictness.LENIENT, 0.0)
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
    if inline:
        index.load_list_columns(info, entries)
    else:
        index.adopt(await asyncio.to_thread(_reloaded, index, info, entries))
    took = time.perf_counter() - started
    running = False
    await task
    return took, max(lags)


async def main_async(count: int) -> None:
    entries = make_entries(count, seed=1)
    for inline in (True, False):
        took, lag = await measure(entries, inline=inline)
        how = "inline on the event loop" if inline else "thread + swap (shipped)"
        print(f"{how}: reload {took:.2f} s, worst event-loop lag {lag * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--entries", type=int, default=1_000_000)
    asyncio.run(main_async(parser.parse_args().entries))


if __name__ == "__main__":
    main()
