"""SubscribeAlerts: replay after a cursor, then live, with no gap and no duplicate at the switch.

Positions in ``alert_stream`` are dense and commit-ordered (migration 0003), which makes the protocol simple:

1. The subscription registers with this replica's :class:`AlertHub` *before* it replays, so any change committed
   from then on reaches its queue.
2. It replays from the database, page by page, every position after its cursor.
3. It then takes changes from its queue, dropping any position it already delivered (replay and live overlap)
   and, should a position be missing before the next one (rows that retention purged, or the hub restarted),
   reading the range from the database first. Every message carries its position as the cursor.

The hub reads each committed change once per replica (woken by ``NOTIFY anpr_hotlist_alerts``, with a poll as a
safety net) and offers it to every subscription; a subscription whose queue is full is cut off with
RESOURCE_EXHAUSTED instead of slowing the others, and resumes from its last cursor.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass

from anpr.hotlist import metrics
from anpr.hotlist.alerts import SELECT_STREAM, Alert, Change, alert_of, count_open
from anpr.hotlist.db import Pool
from anpr.runtime.errors import InvalidArgument, OutOfRange, ResourceExhausted, Unavailable
from anpr.runtime.validation import parse_number_id

log = logging.getLogger(__name__)
_POLL_SECONDS = 2.0
_PREFIX = "alerts:"
_MAX_CURSOR_CHARS = 64  # a prefix and at most 18 digits, in base64


@dataclass(frozen=True)
class StreamItem:
    """One change of the alert stream."""

    position: int
    change: Change
    alert: Alert


@dataclass(frozen=True)
class StreamMessage:
    """What a subscription yields: a change, or a heartbeat (``item`` None) at ``position``."""

    position: int
    item: StreamItem | None
    live: bool


@dataclass(frozen=True)
class Filters:
    """Which alerts a subscriber wants."""

    hotlist_names: Collection[str] = ()
    min_priority: int = 0
    camera_ids: Collection[str] = ()
    include_updates: bool = False

    def wants(self, item: StreamItem) -> bool:
        """Whether the change passes the filters."""
        hit = item.alert.hit.raw
        if not self.include_updates and item.change is not Change.RAISED:
            return False
        if self.hotlist_names and hit.hotlist_name not in self.hotlist_names:
            return False
        if hit.priority < self.min_priority:
            return False
        return not self.camera_ids or item.alert.camera_id in self.camera_ids


def encode_cursor(position: int) -> str:
    """The opaque cursor of a stream position."""
    return base64.urlsafe_b64encode(f"{_PREFIX}{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The position of a cursor; InvalidArgument when it is not one of ours."""
    try:
        if len(cursor) > _MAX_CURSOR_CHARS:
            raise ValueError(cursor)
        text = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode("ascii")).decode()
        if not text.startswith(_PREFIX):
            raise ValueError(cursor)
        return parse_number_id(text[len(_PREFIX) :], "after_cursor")
    except (ValueError, binascii.Error, UnicodeDecodeError, InvalidArgument):
        raise InvalidArgument("after_cursor is malformed") from None


@dataclass(eq=False)
class _Subscription:
    queue: asyncio.Queue[StreamItem]
    overflowed: bool = False

    def offer(self, item: StreamItem) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True


class AlertHub:
    """Reads new stream positions once per replica and fans them out to the subscriptions."""

    def __init__(self, pool: Pool, queue_size: int, page_size: int, heartbeat_seconds: float) -> None:
        self._pool = pool
        self._queue_size = queue_size
        self._page_size = page_size
        self._heartbeat = heartbeat_seconds
        self._subscriptions: set[_Subscription] = set()
        self._head = 0
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start at the committed head (positions up to it are all visible) and follow it."""
        self._head = await self._committed_head()
        metrics.OPEN_ALERTS.set(await count_open(self._pool))
        self._task = asyncio.create_task(self._run(), name="hotlist-alert-hub")

    async def _committed_head(self) -> int:
        async with self._pool.acquire() as connection:
            head: int = await connection.fetchval("SELECT position FROM hotlist.alert_stream_head")
        return head

    def poke(self, _payload: str = "") -> None:
        """LISTEN callback: something was committed to the stream."""
        self._wake.set()

    async def _run(self) -> None:
        polls = 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _POLL_SECONDS)
            self._wake.clear()
            try:
                while True:
                    items = await self.read(self._head, None, self._page_size)
                    for item in items:
                        for subscription in list(self._subscriptions):
                            subscription.offer(item)
                        self._head = item.position
                    if len(items) < self._page_size:
                        break
                polls += 1
                # Every ~10 s: the gauge is read from the database (alerts raised and acknowledged through every
                # replica), never counted up and down here, so all replicas export the same number (take max).
                if polls % 5 == 0:
                    metrics.OPEN_ALERTS.set(await count_open(self._pool))
            except Exception:
                log.exception("alert hub could not read the stream; retrying")

    async def read(self, after: int, upto: int | None, limit: int) -> list[StreamItem]:
        """Stream changes after a position (and below ``upto`` when given), in order."""
        async with self._pool.acquire() as connection:
            rows = await connection.fetch(
                SELECT_STREAM
                + " WHERE s.position > $1 AND ($2::bigint IS NULL OR s.position < $2) ORDER BY s.position LIMIT $3",
                after,
                upto,
                limit,
            )
        return [StreamItem(row["position"], Change(row["change"]), alert_of(row)) for row in rows]

    async def start_position(self, cursor: str, earliest: bool) -> int:
        """The position a subscription starts after; OutOfRange for an unknown or purged cursor."""
        async with self._pool.acquire() as connection:
            head: int = await connection.fetchval("SELECT position FROM hotlist.alert_stream_head")
            oldest: int | None = await connection.fetchval("SELECT min(position) FROM hotlist.alert_stream")
        if not cursor:
            return 0 if earliest else head
        position = decode_cursor(cursor)
        if position > head:
            raise OutOfRange("after_cursor is beyond the end of the alert stream")
        if position < head and position < (head + 1 if oldest is None else oldest) - 1:
            raise OutOfRange("after_cursor points at alerts already purged by retention")
        return position

    async def subscribe(self, after: int, filters: Filters) -> AsyncIterator[StreamMessage]:
        """Replay after ``after``, then follow live; raises ResourceExhausted when the subscriber falls behind."""
        subscription = _Subscription(asyncio.Queue(self._queue_size))
        self._subscriptions.add(subscription)
        metrics.SUBSCRIBERS.inc()
        last = after
        try:
            while True:  # replay
                self._check_open()
                items = await self.read(last, None, self._page_size)
                for item in items:
                    last = item.position
                    if filters.wants(item):
                        yield StreamMessage(item.position, item, live=False)
                if len(items) < self._page_size:
                    break
            yield StreamMessage(last, None, live=True)
            while True:  # live
                queued = await self._next(subscription)
                if queued is None:
                    yield StreamMessage(last, None, live=True)
                    continue
                if queued.position <= last:
                    continue  # already delivered by the replay
                if queued.position > last + 1:
                    for missing in await self.read(last, queued.position, queued.position - last):
                        last = missing.position
                        if filters.wants(missing):
                            yield StreamMessage(missing.position, missing, live=True)
                last = queued.position
                if filters.wants(queued):
                    yield StreamMessage(queued.position, queued, live=True)
        finally:
            self._subscriptions.discard(subscription)
            metrics.SUBSCRIBERS.dec()

    async def _next(self, subscription: _Subscription) -> StreamItem | None:
        """The next queued change, None after a quiet heartbeat interval; ResourceExhausted once overflowed,
        Unavailable once the replica is shutting down."""
        if subscription.overflowed:
            metrics.SUBSCRIBERS_CUT_OFF.inc()
            raise ResourceExhausted("subscriber fell too far behind; resume from the last cursor received")
        self._check_open()
        # Should a cancelled get ever drop an item, the gap check of the caller reads it back.
        get = asyncio.ensure_future(subscription.queue.get())
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            done, _ = await asyncio.wait({get, closing}, timeout=self._heartbeat, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Also when the subscriber went away mid-wait: no task may be left pending behind the stream.
            closing.cancel()
            if not get.done():
                get.cancel()
        if get in done:
            return get.result()
        self._check_open()
        return None

    def _check_open(self) -> None:
        if self._closing.is_set():
            raise Unavailable("hotlist is shutting down; resume from the last cursor received (another replica)")

    async def close_subscriptions(self) -> None:
        """End every subscription with UNAVAILABLE, so that subscribers resume elsewhere at once (shutdown)."""
        self._closing.set()
        for _ in range(50):  # each ends at its next wait; bounded in case one is stuck writing to a slow client
            if not self._subscriptions:
                return
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        """Stop following the stream; safe to call twice."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
