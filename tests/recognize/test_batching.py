"""Dynamic batching: concurrent submissions share batches, order is kept, overload and deadlines are honoured."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from anpr.recognize.batching import BatchQueue
from anpr.runtime.errors import DeadlineExceeded, ResourceExhausted


class Recorder:
    """A batch function that squares numbers and records the batch sizes it saw (optionally slowly)."""

    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None) -> None:
        self.batches: list[int] = []
        self.delay = delay
        self.gate = gate

    def __call__(self, items: Sequence[int]) -> list[int]:
        if self.gate is not None:
            self.gate.wait(5)
        time.sleep(self.delay)
        self.batches.append(len(items))
        if any(item < 0 for item in items):
            raise ValueError("negative input")
        return [item * item for item in items]


@pytest.fixture
async def executor() -> AsyncIterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield pool


async def _queue(recorder: Recorder, executor: ThreadPoolExecutor, **options: float) -> BatchQueue[int, int]:
    settings = {"max_batch_size": 8, "max_wait_seconds": 0.05, "max_queue": 100, **options}
    queue: BatchQueue[int, int] = BatchQueue(
        "test",
        recorder,
        executor=executor,
        max_batch_size=int(settings["max_batch_size"]),
        max_wait_seconds=settings["max_wait_seconds"],
        max_queue=int(settings["max_queue"]),
    )
    queue.start()
    return queue


async def test_concurrent_items_share_batches_and_keep_their_results(executor: ThreadPoolExecutor) -> None:
    recorder = Recorder()
    queue = await _queue(recorder, executor)
    try:
        results = await asyncio.gather(*(queue.submit(n) for n in range(20)))
    finally:
        await queue.close()
    assert results == [n * n for n in range(20)]
    assert sum(recorder.batches) == 20
    assert max(recorder.batches) == 8  # full batches were formed, not 20 single calls
    assert len(recorder.batches) == 3


async def test_a_lone_item_waits_at_most_max_wait(executor: ThreadPoolExecutor) -> None:
    queue = await _queue(Recorder(), executor, max_wait_seconds=0.02)
    try:
        assert await asyncio.wait_for(queue.submit(3), 1) == 9
    finally:
        await queue.close()


async def test_full_queue_is_refused_immediately(executor: ThreadPoolExecutor) -> None:
    gate = threading.Event()
    queue = await _queue(Recorder(gate=gate), executor, max_batch_size=1, max_wait_seconds=0, max_queue=2)
    try:
        first = asyncio.ensure_future(queue.submit(1))  # taken by the worker, blocked on the gate
        await asyncio.sleep(0.05)
        queued = [asyncio.ensure_future(queue.submit(n)) for n in (2, 3)]
        await asyncio.sleep(0.01)
        with pytest.raises(ResourceExhausted, match="queue is full"):
            await queue.submit(4)
        gate.set()
        assert await first == 1
        assert await asyncio.gather(*queued) == [4, 9]
    finally:
        gate.set()
        await queue.close()


async def test_expired_items_are_dropped_before_running(executor: ThreadPoolExecutor) -> None:
    gate = threading.Event()
    recorder = Recorder(gate=gate)
    queue = await _queue(recorder, executor, max_batch_size=1, max_wait_seconds=0)
    try:
        blocker = asyncio.ensure_future(queue.submit(1))
        await asyncio.sleep(0.05)
        expiring = asyncio.ensure_future(queue.submit(2, deadline=time.monotonic() + 0.01))
        await asyncio.sleep(0.05)
        gate.set()
        assert await blocker == 1
        with pytest.raises(DeadlineExceeded):
            await expiring
        assert recorder.batches == [1]  # the expired item never reached the model
    finally:
        gate.set()
        await queue.close()


async def test_a_failing_batch_fails_its_culprit_only(executor: ThreadPoolExecutor) -> None:
    # Issue 19: one bad item used to fail every item of its batch (other callers' images); the batch is now retried
    # item by item and only the item that fails alone gets the error.
    recorder = Recorder()
    queue = await _queue(recorder, executor, max_batch_size=4, max_wait_seconds=0.05)
    try:
        results = await asyncio.gather(
            queue.submit(2), queue.submit(-1), queue.submit(3), queue.submit(4), return_exceptions=True
        )
        assert results[0] == 4
        assert list(results[2:]) == [9, 16]
        assert isinstance(results[1], ValueError)
        assert recorder.batches[0] == 4
        assert recorder.batches[1:] == [1, 1, 1, 1]
        assert await queue.submit(3) == 9  # the queue keeps working
    finally:
        await queue.close()
