"""On-the-fly synthetic batches, generated in parallel DataLoader workers, deterministic per batch index.

Batch ``b`` is drawn from ``numpy.random.default_rng([seed, b])``, so the data stream does not depend on the number
of workers, and ``--resume`` continues exactly where a run stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

MakeBatch = Callable[[np.random.Generator, int], Any]


class SyntheticBatches(IterableDataset[Any]):
    """Batches ``start`` .. ``stop - 1``; batch ``b`` is ``make(default_rng([seed, b]), b)``."""

    def __init__(self, make: MakeBatch, seed: int, start: int, stop: int) -> None:
        super().__init__()
        self.make, self.seed, self.start, self.stop = make, seed, start, stop

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        wid, n = (0, 1) if info is None else (info.id, info.num_workers)
        torch.set_num_threads(1)
        for b in range(self.start + wid, self.stop, n):
            yield self.make(np.random.default_rng([self.seed, b]), b)


def _as_is(batch: Any) -> Any:
    return batch


def loader(make: MakeBatch, seed: int, start: int, stop: int, workers: int) -> DataLoader[Any]:
    """A DataLoader over :class:`SyntheticBatches`; with workers, their batches interleave in index order."""
    return DataLoader(
        SyntheticBatches(make, seed, start, stop),
        batch_size=None,
        collate_fn=_as_is,
        num_workers=workers,
        prefetch_factor=2 if workers else None,
        persistent_workers=False,
    )
