"""Delivery of plate events to ``HotlistService.ReportReads``: spool first, then send in order, in batches.

Every event revision is appended to the durable spool before anything else; one background task sends the oldest
batch, removes it once the hotlist service answered, and otherwise backs off exponentially and tries again. The
hotlist service judges events one by one: an event it REJECTED is set aside as a dead letter (an alarm, see
:mod:`anpr.ingest.dead_letters`) and the rest of the batch counts as delivered. A whole call refused as invalid
(a hotlist service with a smaller batch limit, or an older one that refused whole batches) is retried one event at
a time so that only a bad event is set aside. Duplicates (a batch re-sent after a lost reply) are harmless: the
receiver keeps the highest revision per event id.

Each ReportReads call runs in a span under the span that emitted its first event, linked to the others' (the
emitting spans are remembered in memory only: after a restart the spooled events go out untraced).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

import grpc
import grpc.aio

from anpr.api.common.v1 import plate_event_pb2
from anpr.api.hotlist.v1 import hotlist_service_pb2, hotlist_service_pb2_grpc, read_pb2
from anpr.ingest import metrics
from anpr.ingest.spool import Spool, SpooledEvent
from anpr.runtime import tracing
from anpr.runtime.tracing import Origin

log = logging.getLogger(__name__)

OnDelivered = Callable[[Sequence[SpooledEvent]], Awaitable[None]]
# Emitting spans remembered for events not yet delivered; beyond this (a long hotlist outage) the oldest go untraced.
MAX_TRACED_EVENTS = 10_000

# Codes after which the same batch may succeed later; anything else means the data itself is refused.
_RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
        # Misconfiguration or a hotlist service not yet upgraded: keep the events until an operator fixes it.
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)


class Delivery:
    """Owns the spool-to-hotlist loop; :meth:`submit` from anywhere, :meth:`run` as one background task."""

    def __init__(
        self,
        spool: Spool,
        channel: grpc.aio.Channel,
        metadata: tuple[tuple[str, str], ...],
        *,
        batch_size: int = 100,
        deadline_seconds: float = 10.0,
        backoff_initial_seconds: float = 0.2,
        backoff_max_seconds: float = 10.0,
        on_delivered: OnDelivered | None = None,
    ) -> None:
        self._spool = spool
        self._stub = hotlist_service_pb2_grpc.HotlistServiceStub(channel)
        self._metadata = metadata
        self._batch_size = batch_size
        self._deadline = deadline_seconds
        self._backoff_initial = backoff_initial_seconds
        self._backoff_max = backoff_max_seconds
        self._on_delivered = on_delivered
        self._wake = asyncio.Event()
        self._spool_empty = asyncio.Event()  # set by the sender when it found nothing to send
        self._singles = 0  # events still to send one at a time after an INVALID_ARGUMENT batch
        self._origins: OrderedDict[tuple[str, int], Origin] = OrderedDict()

    async def submit(
        self,
        events: Sequence[plate_event_pb2.PlateEvent],
        *,
        owed_to_store: bool = False,
        origin: Origin | None = None,
    ) -> None:
        """Spool event revisions durably and wake the sender; returns once they are on disk.

        ``owed_to_store``: their event table rows could not be written; the spool notes that in the same
        transaction (see :mod:`anpr.ingest.store_catch_up`). ``origin``: the request and span that emitted them.
        """
        self._spool_empty.clear()
        await self._spool.append(
            [(e.event_id, e.revision, e.SerializeToString()) for e in events], owed_to_store=owed_to_store
        )
        metrics.SPOOL_DEPTH.inc(len(events))
        if origin is not None:
            for event in events:
                self._origins[event.event_id, event.revision] = origin
            while len(self._origins) > MAX_TRACED_EVENTS:
                self._origins.popitem(last=False)
        self._wake.set()

    def wake(self) -> None:
        """Look at the spool now (events were put back into it)."""
        self._spool_empty.clear()
        self._wake.set()

    async def flush(self, seconds: float) -> bool:
        """Wait up to ``seconds`` until everything spooled was delivered (shutdown); True when it was.

        What is not delivered in time stays in the spool for the next start; delivering it now matters where the
        spool's disk does not outlive the process (a pod deleted with its volume).
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._spool_empty.wait(), seconds)
        return self._spool_empty.is_set()

    async def run(self) -> None:
        """Deliver until cancelled."""
        metrics.SPOOL_DEPTH.set(await self._spool.depth())
        backoff = self._backoff_initial
        while True:
            batch = await self._spool.peek(1 if self._singles else self._batch_size)
            if not batch:
                self._spool_empty.set()
                self._wake.clear()
                # The timeout is a safety net only: submit() wakes the loop.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=5.0)
                continue
            if await self._send(batch):
                backoff = self._backoff_initial
                continue
            await self._spool.record_attempt([entry.seq for entry in batch])
            # New events do not cut the backoff short: a down hotlist service must not be hammered.
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._backoff_max)

    async def _send(self, batch: list[SpooledEvent]) -> bool:
        request = hotlist_service_pb2.ReportReadsRequest(
            events=[plate_event_pb2.PlateEvent.FromString(entry.payload) for entry in batch]
        )
        origins = [self._origins.get((entry.event_id, entry.revision)) for entry in batch]
        with tracing.batch_span("ingest.deliver_events", origins, {"anpr.events": len(batch)}):
            return await self._report(batch, request)

    async def _report(self, batch: list[SpooledEvent], request: hotlist_service_pb2.ReportReadsRequest) -> bool:
        try:
            reply = await self._stub.ReportReads(request, timeout=self._deadline, metadata=self._metadata)
        except grpc.aio.AioRpcError as error:
            code = error.code()
            metrics.DELIVERY_FAILURES.labels(code.name).inc()
            if code in _RETRYABLE:
                log.warning(
                    "hotlist delivery failed, will retry",
                    extra={"grpc_code": code.name, "events": len(batch), "detail": error.details()},
                )
                return False
            if len(batch) > 1:
                self._singles = len(batch)  # find the bad event by sending one at a time
                return True
            await self._settle([], [(batch[0], f"{code.name}: {error.details()}")])
            self._singles = max(0, self._singles - 1)
            return True
        refused = {
            (result.event_id, result.revision): result.rejection_message
            for result in reply.results
            if result.status == read_pb2.READ_STATUS_REJECTED
        }
        delivered = [entry for entry in batch if (entry.event_id, entry.revision) not in refused]
        dead = [
            (entry, f"REJECTED: {refused[entry.event_id, entry.revision]}")
            for entry in batch
            if (entry.event_id, entry.revision) in refused
        ]
        await self._settle(delivered, dead)
        self._singles = max(0, self._singles - len(batch))
        return True

    async def _settle(self, delivered: list[SpooledEvent], dead: list[tuple[SpooledEvent, str]]) -> None:
        await self._spool.settle([entry.seq for entry in delivered], dead)
        for entry in (*delivered, *(entry for entry, _ in dead)):
            self._origins.pop((entry.event_id, entry.revision), None)
        metrics.SPOOL_DEPTH.dec(len(delivered) + len(dead))
        metrics.EVENTS_DELIVERED.inc(len(delivered))
        if dead:
            metrics.EVENTS_DEAD_LETTERED.inc(len(dead))
            metrics.DEAD_LETTERS.inc(len(dead))
            for entry, reason in dead:
                # The reason names the field the hotlist service objected to, never the plate text.
                log.error(
                    "hotlist refused an event; set aside as a dead letter",
                    extra={"event_id": entry.event_id, "revision": entry.revision, "reason": reason},
                )
        if delivered and self._on_delivered is not None:
            await self._on_delivered(delivered)
