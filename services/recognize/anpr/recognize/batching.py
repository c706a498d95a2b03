"""Dynamic batching: items submitted concurrently are run together through one synchronous batch function.

Model inference is far cheaper per item in batches (one ONNX Runtime call amortises the fixed cost, and a GPU
needs large batches to be busy). Callers submit one item and await its result; a worker collects items until the
batch is full or the oldest item has waited ``max_wait_seconds``, then runs the batch in an executor so the event
loop never blocks.

Waiting only pays when more items are on their way: ``incoming`` (a callable the owner provides) reports how many
items are in the stages before this one, and a lone item with nothing incoming runs at once instead of sitting out
``max_wait_seconds``. Under load, batches also form naturally while the previous batch runs.

Overload is refused at once (``ResourceExhausted``) once ``max_queue`` items wait, instead of queueing without bound.
Items whose deadline passes while queued, or whose caller went away, are dropped before the batch runs.

A batch that raises is retried one item at a time, so a bad item (one that trips an assertion in a model stage)
fails alone and its batch-mates, often other callers' images, still get their results.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Generic, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from anpr.runtime.errors import DeadlineExceeded, ResourceExhausted

log = logging.getLogger(__name__)
ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

BATCH_SIZE = Histogram(
    "anpr_recognize_batch_size",
    "Items per model batch, by stage.",
    ("stage",),
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
QUEUE_DEPTH = Gauge("anpr_recognize_queue_depth", "Items waiting for a batch, by stage.", ("stage",))
QUEUE_WAIT_SECONDS = Histogram(
    "anpr_recognize_queue_wait_seconds",
    "Time an item waited for its batch to start, by stage.",
    ("stage",),
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1),
)
BATCH_RETRIES = Counter(
    "anpr_recognize_batch_retries_total",
    "Model batches that failed as a whole and were retried one item at a time, by stage.",
    ("stage",),
)


@dataclass
class _Pending(Generic[ItemT, ResultT]):
    item: ItemT
    future: asyncio.Future[ResultT]
    enqueued: float
    deadline: float | None


class BatchQueue(Generic[ItemT, ResultT]):
    """Gathers items into batches for ``run_batch`` (which maps a list of items to a list of results, in order)."""

    def __init__(
        self,
        stage: str,
        run_batch: Callable[[Sequence[ItemT]], Sequence[ResultT]],
        *,
        executor: Executor,
        max_batch_size: int,
        max_wait_seconds: float,
        max_queue: int,
        concurrency: int = 1,
        incoming: Callable[[], int] | None = None,
    ) -> None:
        if max_batch_size < 1 or max_queue < 1 or concurrency < 1 or max_wait_seconds < 0:
            raise ValueError("batch sizes, queue length and concurrency must be positive")
        self.stage = stage
        self._run_batch = run_batch
        self._executor = executor
        self._max_batch_size = max_batch_size
        self._max_wait = max_wait_seconds
        self._max_queue = max_queue
        self._concurrency = concurrency
        self._incoming = incoming
        self._pending: deque[_Pending[ItemT, ResultT]] = deque()
        self._arrived = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._depth = QUEUE_DEPTH.labels(stage)

    def start(self) -> None:
        """Start the batch workers (call from the event loop that will submit)."""
        if not self._workers:
            self._workers = [
                asyncio.create_task(self._work(), name=f"batch-{self.stage}") for _ in range(self._concurrency)
            ]

    async def close(self) -> None:
        """Stop the workers; items still queued fail with Unavailable-like cancellation."""
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        while self._pending:
            pending = self._pending.popleft()
            if not pending.future.done():
                pending.future.cancel()
        self._depth.set(0)

    @property
    def depth(self) -> int:
        """Items waiting now."""
        return len(self._pending)

    async def submit(self, item: ItemT, deadline: float | None = None) -> ResultT:
        """Queue one item and wait for its result. ``deadline`` is a ``time.monotonic()`` value."""
        if len(self._pending) >= self._max_queue:
            raise ResourceExhausted(f"{self.stage} queue is full ({self._max_queue} waiting); retry with backoff")
        future: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(item, future, time.monotonic(), deadline))
        self._depth.set(len(self._pending))
        self._arrived.set()
        return await future

    async def _next_batch(self) -> list[_Pending[ItemT, ResultT]]:
        while not self._pending:
            self._arrived.clear()
            await self._arrived.wait()
        # Wait for more items only while the batch is not full and the oldest item may still wait.
        oldest = self._pending[0].enqueued
        while len(self._pending) < self._max_batch_size:
            if self._incoming is not None and self._incoming() <= 0:
                break  # nothing else is on its way: waiting would only add latency
            remaining = oldest + self._max_wait - time.monotonic()
            if remaining <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                break
        batch: list[_Pending[ItemT, ResultT]] = []
        now = time.monotonic()
        while self._pending and len(batch) < self._max_batch_size:
            pending = self._pending.popleft()
            if pending.future.done():  # the caller was cancelled
                continue
            if pending.deadline is not None and pending.deadline <= now:
                pending.future.set_exception(DeadlineExceeded(f"deadline passed while waiting for {self.stage}"))
                continue
            batch.append(pending)
        self._depth.set(len(self._pending))
        return batch

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            started = time.monotonic()
            for pending in batch:
                QUEUE_WAIT_SECONDS.labels(self.stage).observe(started - pending.enqueued)
            BATCH_SIZE.labels(self.stage).observe(len(batch))
            try:
                results = await loop.run_in_executor(self._executor, self._run_batch, [p.item for p in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _fail(batch, exc)
                else:
                    # One bad item must not fail its batch-mates: run each alone, so only the culprit fails.
                    log.warning(
                        "a %s batch of %d failed (%s); retrying its items one by one", self.stage, len(batch), exc
                    )
                    BATCH_RETRIES.labels(self.stage).inc()
                    for pending in batch:
                        await self._run_alone(loop, pending)
                continue
            if len(results) != len(batch):
                _fail(batch, RuntimeError(f"{self.stage} returned {len(results)} results for {len(batch)} items"))
                continue
            for pending, result in zip(batch, results, strict=True):
                if not pending.future.done():
                    pending.future.set_result(result)

    async def _run_alone(self, loop: asyncio.AbstractEventLoop, pending: _Pending[ItemT, ResultT]) -> None:
        if pending.future.done():
            return
        try:
            results = await loop.run_in_executor(self._executor, self._run_batch, [pending.item])
        except Exception as exc:
            _fail([pending], exc)
            return
        if len(results) != 1:
            _fail([pending], RuntimeError(f"{self.stage} returned {len(results)} results for 1 item"))
        elif not pending.future.done():
            pending.future.set_result(results[0])


def _fail(batch: Sequence[_Pending[ItemT, ResultT]], error: Exception) -> None:
    for pending in batch:
        if not pending.future.done():
            pending.future.set_exception(error)
