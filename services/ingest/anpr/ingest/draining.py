"""Closing camera connections on shutdown without splitting a vehicle pass.

A pass is tracked by the replica that receives its frames; should its camera move to another replica mid-pass,
the vehicle gets two events. So on SIGTERM each camera is sent away only between passes: frames of a camera with
a pass in progress (or frames still in recognition) are still accepted; the first time the camera has none, its
stream ends with UNAVAILABLE ("reconnect elsewhere") and its unary submissions are refused the same way. A camera
that never reaches a pass boundary is sent away when the drain budget runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from anpr.runtime.errors import Unavailable

T = TypeVar("T")

_RECHECK_SECONDS = 0.1

SENT_AWAY = "ingest is shutting down; reconnect (another replica takes the camera) and resend unacknowledged frames"


class StreamDrain:
    """Tracks open camera streams and decides when each may be closed."""

    def __init__(self, camera_busy: Callable[[str], bool]) -> None:
        self._camera_busy = camera_busy
        # One future for every stream to wait on (a per-frame task waiting on an Event would cost a task per frame).
        self._started: asyncio.Future[None] | None = None
        self._streams = 0
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        self._expired = False

    @property
    def draining(self) -> bool:
        """Shutdown has begun."""
        return self._started is not None and self._started.done()

    def may_accept(self, camera_id: str) -> bool:
        """Whether a frame of the camera is still taken (always, unless draining and the camera is between passes)."""
        return not self.draining or (not self._expired and self._camera_busy(camera_id))

    def check(self, camera_id: str) -> None:
        """Raise Unavailable when the camera's frames must go to another replica."""
        if not self.may_accept(camera_id):
            raise Unavailable(SENT_AWAY)

    @contextlib.contextmanager
    def stream(self) -> Iterator[None]:
        """Count a camera stream while it is open."""
        self._streams += 1
        self._all_closed.clear()
        try:
            yield
        finally:
            self._streams -= 1
            if self._streams == 0:
                self._all_closed.set()

    def _start(self) -> asyncio.Future[None]:
        if self._started is None:
            self._started = asyncio.get_running_loop().create_future()
        return self._started

    async def next_request(self, requests: AsyncIterator[T], camera_id: str) -> T | None:
        """The stream's next message (None at its end); Unavailable once the camera is to be sent away.

        An idle stream is not left waiting for a frame that may never come: the wait ends when draining starts.
        """
        self.check(camera_id)
        read: asyncio.Future[Any] = asyncio.ensure_future(anext(requests, None))
        try:
            while True:
                if self.draining:
                    done, _ = await asyncio.wait({read}, timeout=_RECHECK_SECONDS)
                else:
                    done, _ = await asyncio.wait({read, self._start()}, return_when=asyncio.FIRST_COMPLETED)
                if read in done:
                    result: T | None = read.result()
                    return result
                self.check(camera_id)
        finally:
            if not read.done():
                read.cancel()

    async def drain(self, budget_seconds: float) -> None:
        """Start draining; return when every stream has closed or the budget is spent (then close the rest)."""
        started = self._start()
        if not started.done():
            started.set_result(None)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_closed.wait(), budget_seconds)
        self._expired = True
        # Streams waiting for a frame of a busy camera notice within one recheck and end.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_closed.wait(), 2 * _RECHECK_SECONDS + 0.5)
