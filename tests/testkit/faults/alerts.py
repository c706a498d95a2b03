"""A SubscribeAlerts subscriber that records every alert it is sent, and can be killed and resumed.

It keeps the cursor of the last message it handled, as a control-room client persists it, and resumes after it:
when the stream breaks (hotlist restarted) and when it is started again after :meth:`AlertSubscriber.kill`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import grpc
import grpc.aio

from anpr.api.hotlist.v1 import hotlist_service_pb2, hotlist_service_pb2_grpc


@dataclass(frozen=True)
class ReceivedAlert:
    """One RAISED alert as the subscriber received it."""

    alert_id: str
    event_id: str
    camera_id: str
    plate: str
    first_seen: float  # of the event (seconds since the epoch)
    last_seen: float
    received_at: float


@dataclass
class AlertSubscriber:
    """Subscribes to the alerts of some cameras from the earliest retained one."""

    stub: hotlist_service_pb2_grpc.HotlistServiceAsyncStub
    metadata: tuple[tuple[str, str], ...]
    camera_ids: list[str]
    received: list[ReceivedAlert] = field(default_factory=list)
    cursor: str = ""
    streams: int = 0  # subscriptions opened (1 + reconnects + resumes)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Subscribe (again), after the saved cursor when there is one."""
        assert self._task is None or self._task.done(), "already subscribed"
        self._task = asyncio.create_task(self._run())

    async def kill(self) -> None:
        """The subscriber dies: its stream is cut, its saved cursor stays."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._subscribe()
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.OUT_OF_RANGE:
                    raise  # the saved cursor is gone: alerts were skipped, which the report must show
            await asyncio.sleep(0.2)

    async def _subscribe(self) -> None:
        request = hotlist_service_pb2.SubscribeAlertsRequest(
            after_cursor=self.cursor,
            start=hotlist_service_pb2.ALERT_STREAM_START_EARLIEST,
            camera_ids=self.camera_ids,
        )
        self.streams += 1
        async for message in self.stub.SubscribeAlerts(request, metadata=self.metadata):
            if message.HasField("update") and message.update.change == hotlist_service_pb2.ALERT_CHANGE_RAISED:
                alert = message.update.alert
                event = alert.event
                self.received.append(
                    ReceivedAlert(
                        alert.alert_id,
                        event.event_id,
                        event.camera_id,
                        event.reading.text,
                        event.first_seen_time.ToNanoseconds() / 1e9,
                        event.last_seen_time.ToNanoseconds() / 1e9,
                        time.time(),
                    )
                )
            if message.cursor:
                self.cursor = message.cursor

    @property
    def failure(self) -> BaseException | None:
        """What ended the subscription for good (an unknown cursor), if anything."""
        if self._task is None or not self._task.done() or self._task.cancelled():
            return None
        return self._task.exception()
