"""Cross-cutting call handling: request ids, metrics and access logs, authentication, error mapping.

Each concern is an async context manager wrapped around every handler, so it works the same for unary and
streaming methods. :class:`CallPipeline` enters them in order, outermost first:

0. the trace span (continuing the caller's W3C trace context; a no-op while tracing is off, see
   :mod:`anpr.runtime.tracing`),
1. request id (so every log line and error below carries it),
2. metrics and access log (so refused and failed calls are counted),
3. authentication and authorisation,
4. the error boundary that turns domain exceptions into status codes.

Requests are decoded and checked (:mod:`anpr.runtime.validation`) by a wrapped deserializer that never raises:
a body that is not a valid message, or one with values no handler can use, becomes a :class:`BadRequest` that the
handler wrapper turns into INVALID_ARGUMENT inside the error boundary, after authentication. gRPC itself would
answer UNKNOWN and log a traceback for every such request, anonymous ones included.

Client side, :func:`client_interceptors` forwards the current request id (and, with tracing on, the trace context)
on every call a service makes to another.

The server span is a concern here rather than opentelemetry-instrumentation-grpc's aio server interceptor: that
one cannot wrap handlers that write with ``context.write()``, records every abort as an exception event (its
message included), and would see a different status than the one this pipeline's error boundary settles on.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
from opentelemetry import context as otel_context
from opentelemetry import trace

from anpr.runtime import metrics, tracing
from anpr.runtime.auth import AccessPolicy, TokensFileInvalid, TokenStore, bearer_token
from anpr.runtime.context import current_request_id, principal_var, request_id_var
from anpr.runtime.errors import AnprError, InvalidArgument
from anpr.runtime.validation import request_problem

log = logging.getLogger(__name__)

# Health checks (Kubernetes probes) and reflection (grpcurl, debugging) answer without credentials; they reveal
# nothing about plates or people.
PUBLIC_SERVICES = frozenset(
    {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection"}
)
# A caller's request id is kept (for tracing across services) only when it is short and plain, since it goes
# into logs and audit rows; fullmatch, because `$` would also accept a trailing newline.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@dataclass(frozen=True)
class RpcInfo:
    """What the concerns need to know about the call being handled."""

    full_method: str
    service: str
    method: str
    kind: str

    @classmethod
    def of(cls, full_method: str, handler: grpc.RpcMethodHandler[Any, Any]) -> RpcInfo:
        service, _, method = full_method.lstrip("/").partition("/")
        if handler.request_streaming and handler.response_streaming:
            kind = "bidi_stream"
        elif handler.request_streaming:
            kind = "client_stream"
        elif handler.response_streaming:
            kind = "server_stream"
        else:
            kind = "unary"
        return cls(full_method=full_method, service=service, method=method, kind=kind)


if TYPE_CHECKING:  # generic only in grpc-stubs
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
    _UnaryUnaryClient = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
    _UnaryStreamClient = grpc.aio.UnaryStreamClientInterceptor[Any, Any]
    _StreamUnaryClient = grpc.aio.StreamUnaryClientInterceptor[Any, Any]
    _StreamStreamClient = grpc.aio.StreamStreamClientInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.aio.ServerInterceptor
    _UnaryUnaryClient = grpc.aio.UnaryUnaryClientInterceptor
    _UnaryStreamClient = grpc.aio.UnaryStreamClientInterceptor
    _StreamUnaryClient = grpc.aio.StreamUnaryClientInterceptor
    _StreamStreamClient = grpc.aio.StreamStreamClientInterceptor

Concern = Callable[[RpcInfo, grpc.aio.ServicerContext[Any, Any]], AbstractAsyncContextManager[None]]


class CallPipeline(_ServerInterceptor):
    """Wraps every handler in the given concerns (first = outermost)."""

    def __init__(self, concerns: Sequence[Concern]) -> None:
        self._concerns = tuple(concerns)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        info = RpcInfo.of(handler_call_details.method, handler)
        return _wrap(handler, info, self._concerns)


@dataclass(frozen=True)
class BadRequest:
    """Stands for a request message that could not be decoded or that validation refused."""

    reason: str


def checked_deserializer(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any]:
    """A deserializer that returns the message, or a :class:`BadRequest` instead of raising."""

    def decode(raw: bytes) -> Any:
        if deserializer is None:
            return raw
        try:
            message = deserializer(raw)
        except Exception:  # DecodeError, and whatever else a hostile body makes the parser raise
            return BadRequest("the request is not a valid message of this method's type")
        problem = request_problem(message) if hasattr(message, "DESCRIPTOR") else None
        return message if problem is None else BadRequest(problem)

    return decode


def _accepted(request: Any) -> Any:
    if isinstance(request, BadRequest):
        raise InvalidArgument(request.reason)
    return request


async def _accepted_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        yield _accepted(request)


def _wrap(
    handler: grpc.RpcMethodHandler[Any, Any], info: RpcInfo, concerns: tuple[Concern, ...]
) -> grpc.RpcMethodHandler[Any, Any]:
    streamed_requests = handler.request_streaming

    async def enter(stack: AsyncExitStack, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        for concern in concerns:
            await stack.enter_async_context(concern(info, context))

    def accepted(request: Any) -> Any:
        # Inside every concern, so an anonymous caller is refused before its request is judged.
        return _accepted_stream(request) if streamed_requests else _accepted(request)

    def unary_result(behavior: Any) -> Callable[..., Awaitable[Any]]:
        async def run(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            async with AsyncExitStack() as stack:
                await enter(stack, context)
                result = behavior(accepted(request), context)
                return await result if inspect.isawaitable(result) else result

        return run

    def streamed_result(behavior: Any) -> Callable[..., Any]:
        if not inspect.isasyncgenfunction(behavior):
            return unary_result(behavior)  # handler writes with context.write() and returns

        async def run(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            async with AsyncExitStack() as stack:
                await enter(stack, context)
                async for response in behavior(accepted(request), context):
                    yield response

        return run

    options = {
        "request_deserializer": checked_deserializer(handler.request_deserializer),
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(unary_result(handler.unary_unary), **options)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(streamed_result(handler.unary_stream), **options)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(unary_result(handler.stream_unary), **options)
    return grpc.stream_stream_rpc_method_handler(streamed_result(handler.stream_stream), **options)


# Server span status per the OpenTelemetry RPC conventions: codes that say the client erred are not server errors.
_SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


@asynccontextmanager
async def trace_call(info: RpcInfo, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
    """A server span for the call, continuing the caller's ``traceparent``; current for everything below."""
    if not tracing.enabled():
        yield
        return
    span = tracing.tracer().start_span(
        info.full_method.lstrip("/"),
        context=tracing.extract(context.invocation_metadata() or ()),
        kind=trace.SpanKind.SERVER,
        attributes={"rpc.system": "grpc", "rpc.service": info.service, "rpc.method": info.method},
    )
    # Not detached afterwards, as for the request id: every RPC runs in its own task and context.
    otel_context.attach(trace.set_span_in_context(span))
    failure: BaseException | None = None
    try:
        yield
    except BaseException as exc:
        failure = exc
        raise
    finally:
        code = _code_of(failure, context)
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code in _SERVER_ERRORS:
            # The code name only: details may quote what the caller sent.
            span.set_status(trace.Status(trace.StatusCode.ERROR, code.name))
        span.end()


@asynccontextmanager
async def request_id(info: RpcInfo, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
    """Take the caller's ``x-request-id`` (or make one), expose it to logs, and return it in trailing metadata."""
    given = next((str(v) for k, v in context.invocation_metadata() or () if k == "x-request-id"), "")
    value = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    # Every RPC runs in its own task, hence its own context: the value needs no reset afterwards (and a reset
    # would fail when a cancelled stream's generator is finalised from another context).
    request_id_var.set(value)
    context.set_trailing_metadata((("x-request-id", value),))
    yield


def _code_of(exc: BaseException | None, context: grpc.aio.ServicerContext[Any, Any]) -> grpc.StatusCode:
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        return grpc.StatusCode.CANCELLED
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    return grpc.StatusCode.UNKNOWN if exc is not None else grpc.StatusCode.OK


@asynccontextmanager
async def observe(info: RpcInfo, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
    """Count the call and its outcome, time it, and write a DEBUG access log line (WARNING for server faults)."""
    labels = (info.kind, info.service, info.method)
    metrics.GRPC_STARTED.labels(*labels).inc()
    started = time.perf_counter()
    failure: BaseException | None = None
    try:
        yield
    except BaseException as exc:
        failure = exc
        raise
    finally:
        elapsed = time.perf_counter() - started
        code = _code_of(failure, context)
        metrics.GRPC_HANDLED.labels(*labels, code.name).inc()
        metrics.GRPC_HANDLING_SECONDS.labels(*labels).observe(elapsed)
        server_fault = code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS)
        log.log(
            logging.WARNING if server_fault else logging.DEBUG,
            "rpc finished",
            extra={"rpc": info.full_method, "code": code.name, "seconds": round(elapsed, 6)},
        )


def authenticate(tokens: TokenStore, policy: AccessPolicy) -> Concern:
    """Require a known bearer token whose roles the service's access policy allows for the method."""

    @asynccontextmanager
    async def concern(info: RpcInfo, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
        if info.service in PUBLIC_SERVICES:
            yield
            return
        token = bearer_token(context.invocation_metadata() or ())
        if token is None:
            metrics.AUTH_FAILURES.labels("missing_token").inc()
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED, "missing credentials: send metadata 'authorization: Bearer <token>'"
            )
        try:
            principal = tokens.lookup(token)
        except TokensFileInvalid:
            metrics.AUTH_FAILURES.labels("tokens_file_invalid").inc()
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the service's tokens file is invalid; try again later")
        if principal is None:
            metrics.AUTH_FAILURES.labels("unknown_token").inc()
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown bearer token")
        allowed = policy.get(info.full_method, frozenset())
        if not principal.roles & allowed:
            metrics.AUTH_FAILURES.labels("role").inc()
            needed = ", ".join(sorted(allowed)) or "a role no client holds"
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{info.method} requires one of: {needed}")
        principal_var.set(principal)  # per-task context, as for the request id
        yield

    return concern


@asynccontextmanager
async def map_errors(info: RpcInfo, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
    """The one boundary where domain exceptions become status codes; nothing fails silently."""
    try:
        yield
    except AnprError as exc:
        await context.abort(exc.code, exc.message)
    except NotImplementedError:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{info.method} is not implemented by this server")
    except (grpc.aio.AbortError, asyncio.CancelledError, GeneratorExit):
        raise
    except Exception:
        log.exception("unhandled error in %s", info.full_method)
        await context.abort(
            grpc.StatusCode.INTERNAL, f"internal error; quote request id {request_id_var.get()} to the operators"
        )


def standard_pipeline(tokens: TokenStore, policy: AccessPolicy) -> CallPipeline:
    """The pipeline every service installs."""
    return CallPipeline([trace_call, request_id, observe, authenticate(tokens, policy), map_errors])


def _with_request_id(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    value = current_request_id()
    if value is None:
        return details
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    if "x-request-id" not in metadata:
        metadata["x-request-id"] = value
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class _ForwardUnaryUnary(_UnaryUnaryClient):
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(_with_request_id(client_call_details), request)


class _ForwardUnaryStream(_UnaryStreamClient):
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(_with_request_id(client_call_details), request)


class _ForwardStreamUnary(_StreamUnaryClient):
    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(_with_request_id(client_call_details), request_iterator)


class _ForwardStreamStream(_StreamStreamClient):
    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(_with_request_id(client_call_details), request_iterator)


def client_interceptors() -> list[Any]:  # grpc-stubs leaves grpc.aio.ClientInterceptor unusable as a type
    """For a channel from one service to another: the request id forwarded as ``x-request-id`` on every call,
    and, with tracing on, a client span whose context travels as ``traceparent``."""
    forward: list[Any] = [
        _ForwardUnaryUnary(),
        _ForwardUnaryStream(),
        _ForwardStreamUnary(),
        _ForwardStreamStream(),
    ]
    # Tracing first (outermost), so the request id sits beside the trace context in the metadata it sends.
    return [*tracing.client_interceptors(), *forward]
