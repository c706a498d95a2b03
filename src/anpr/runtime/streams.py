"""Bounds on streaming calls: streams open at once per caller, and how long a stream may wait for its client.

A stream costs the server a task, buffers and often more (an ingest camera pipeline, a recognition window), for as
long as the client keeps it open. Issue 19 measured 2,500 idle streams held for 60 s by one client: nothing closed
them and nothing counted them. :class:`StreamGuard` is a server interceptor installed inside the call pipeline
(:mod:`anpr.runtime.interceptors`), so it sees the authenticated principal and its errors pass through the one
error boundary:

- every streaming call (client, server or bidirectional) counts against its principal; one more than
  ``max_streams_per_principal`` is refused with RESOURCE_EXHAUSTED. Server-streaming calls such as
  SubscribeAlerts are legitimately long-lived, so for them only this count applies;
- a call whose requests are streamed (PushFrames, StreamRecognize, ImportEntries) ends with DEADLINE_EXCEEDED
  when its client sends nothing for ``stream_idle_timeout_seconds``; a client with something to send reconnects.

Public services (health, reflection) have no principal and are not counted.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter as Tally
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import grpc.aio
from prometheus_client import Counter, Gauge

from anpr.runtime.context import principal_var
from anpr.runtime.errors import DeadlineExceeded, ResourceExhausted

T = TypeVar("T")

OPEN_STREAMS = Gauge("anpr_grpc_open_streams", "Streaming calls open now, by method.", ("grpc_method",))
STREAMS_REFUSED = Counter(
    "anpr_grpc_streams_refused_total",
    "Streaming calls refused because their caller had the most streams allowed open, by method.",
    ("grpc_method",),
)
IDLE_STREAMS_CLOSED = Counter(
    "anpr_grpc_idle_streams_closed_total",
    "Streaming calls ended because the client sent nothing for the idle timeout, by method.",
    ("grpc_method",),
)

if TYPE_CHECKING:  # generic only in grpc-stubs
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.aio.ServerInterceptor


class IdleStream(DeadlineExceeded):
    """The client of a streaming call sent nothing for the idle timeout."""


class _IdleLimited(AsyncIterator[T]):
    """The requests of a stream, each awaited at most ``seconds``.

    A plain iterator rather than an async generator: a reader that cancels a pending read (ingest's graceful
    drain does) must not close the stream for later reads.
    """

    def __init__(self, requests: AsyncIterator[T], seconds: float, method: str) -> None:
        self._requests = aiter(requests)
        self._seconds = seconds
        self._method = method

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        try:
            async with asyncio.timeout(self._seconds):
                return await anext(self._requests)
        except TimeoutError:
            IDLE_STREAMS_CLOSED.labels(self._method).inc()
            raise IdleStream(
                f"no message from the client for {self._seconds:g} s; the stream was closed (reconnect to go on)"
            ) from None


class StreamGuard(_ServerInterceptor):
    """Counts streams per principal and closes request streams whose client has gone quiet."""

    def __init__(self, max_streams_per_principal: int, idle_timeout_seconds: float) -> None:
        if max_streams_per_principal < 1 or idle_timeout_seconds <= 0:
            raise ValueError("the stream limit and the idle timeout must be positive")
        self._max = max_streams_per_principal
        self._idle = idle_timeout_seconds
        self._open: Tally[str] = Tally()

    def open_streams(self, identity: str) -> int:
        """Streams the principal has open now."""
        return self._open[identity]

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None or not (handler.request_streaming or handler.response_streaming):
            return handler
        method = handler_call_details.method
        options = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(self._unary(handler.stream_unary, method, True), **options)
        behavior = handler.stream_stream if handler.stream_stream is not None else handler.unary_stream
        streamed = handler.request_streaming
        if not inspect.isasyncgenfunction(behavior):  # writes with context.write() and returns
            wrapped: Any = self._unary(behavior, method, streamed)
        else:
            wrapped = self._streaming(behavior, method, streamed)
        if streamed:
            return grpc.stream_stream_rpc_method_handler(wrapped, **options)
        return grpc.unary_stream_rpc_method_handler(wrapped, **options)

    def _admit(self, method: str) -> str | None:
        principal = principal_var.get()
        if principal is None:
            return None
        identity = principal.identity
        if self._open[identity] >= self._max:
            STREAMS_REFUSED.labels(method).inc()
            raise ResourceExhausted(
                f"{self._open[identity]} streams of this caller are open (the limit is {self._max}); "
                "close one before opening another"
            )
        self._open[identity] += 1
        OPEN_STREAMS.labels(method).inc()
        return identity

    def _release(self, identity: str | None, method: str) -> None:
        if identity is None:
            return
        OPEN_STREAMS.labels(method).dec()
        self._open[identity] -= 1
        if self._open[identity] <= 0:
            del self._open[identity]

    def _requests(self, request: Any, method: str, streamed: bool) -> Any:
        return _IdleLimited(request, self._idle, method) if streamed else request

    def _unary(self, behavior: Any, method: str, streamed: bool) -> Callable[..., Awaitable[Any]]:
        async def run(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            identity = self._admit(method)
            try:
                result = behavior(self._requests(request, method, streamed), context)
                return await result if inspect.isawaitable(result) else result
            finally:
                self._release(identity, method)

        return run

    def _streaming(self, behavior: Any, method: str, streamed: bool) -> Callable[..., AsyncIterator[Any]]:
        async def run(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            identity = self._admit(method)
            try:
                async for response in behavior(self._requests(request, method, streamed), context):
                    yield response
            finally:
                self._release(identity, method)

        return run
