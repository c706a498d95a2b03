"""OpenTelemetry tracing: W3C trace context across the services, spans exported over OTLP when configured.

Off by default: without an ``otlp_endpoint`` no provider exists, nothing is recorded and the helpers here cost a
branch. With one, :func:`configure` builds this process's provider (service name as the resource, a parent-based
ratio sampler, a batching OTLP/gRPC exporter) and :func:`shutdown` flushes it when the service stops.

Where spans come from:

* every RPC a service handles: :func:`anpr.runtime.interceptors.trace_call` (the server pipeline's outermost
  concern) continues the caller's ``traceparent``/``tracestate`` metadata;
* every RPC a service makes on a channel with :func:`client_interceptors`: opentelemetry-instrumentation-grpc's
  client interceptors open a client span and inject the context into the call's metadata;
* work that gathers many items into one call (ingest's recognition batches, event emission, hotlist delivery):
  :func:`batch_span` makes the span a child of the first item's span and links the others, so one frame can be
  followed from its arrival to the hotlist call that reported its pass, and each batch shows every frame in it.

Span attributes carry ids (camera, frame, event) and counts, never plate text: the trace backend is not a place
the POPIA retention rules cover.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from anpr.runtime.context import current_request_id, request_id_var

log = logging.getLogger(__name__)

INSTRUMENTATION = "anpr"
# W3C trace context only: the one format every collector and mesh understands; baggage is not needed here.
PROPAGATOR = TraceContextTextMapPropagator()

_provider: TracerProvider | None = None
_NO_TRACER = trace.NoOpTracer()


@dataclass(frozen=True)
class Origin:
    """Where a piece of work came from: the request id and span it continues (ids only, nothing personal)."""

    request_id: str | None = None
    span: trace.SpanContext | None = None
    started_ns: int = 0  # time.time_ns() when the work was taken on

    @classmethod
    def current(cls) -> Origin:
        """The request id and recording span of the running task."""
        span = trace.get_current_span().get_span_context()
        return cls(current_request_id(), span if span.is_valid else None, time.time_ns())


def configure(service: str, endpoint: str, sample_ratio: float) -> bool:
    """Start exporting this process's spans to the OTLP/gRPC ``endpoint`` (``http://`` plaintext, ``https://`` TLS);
    an empty endpoint leaves tracing off. Returns whether tracing is on."""
    global _provider
    shutdown()
    if not endpoint:
        return False
    # Imported here: the exporter pulls in its generated protos, which a service with tracing off never needs.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(
        resource=Resource.create({"service.name": f"anpr-{service}", "service.namespace": "anpr"}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    _provider = provider
    log.info("tracing on", extra={"otlp_endpoint": endpoint, "trace_sample_ratio": sample_ratio})
    return True


def shutdown() -> None:
    """Export what is buffered and stop tracing; safe to call when it is off or already stopped."""
    global _provider
    provider, _provider = _provider, None
    if provider is not None:
        provider.shutdown()  # flushes the batch processor; bounded by the exporter's own timeout


@contextmanager
def tracing(service: str, endpoint: str, sample_ratio: float) -> Iterator[None]:
    """:func:`configure` for the life of the block, flushed on the way out."""
    configure(service, endpoint, sample_ratio)
    try:
        yield
    finally:
        shutdown()


def enabled() -> bool:
    """Whether spans are being recorded (an OTLP endpoint is configured)."""
    return _provider is not None


def tracer() -> trace.Tracer:
    """The process's tracer (a no-op one while tracing is off)."""
    return _NO_TRACER if _provider is None else _provider.get_tracer(INSTRUMENTATION)


def client_interceptors() -> list[Any]:  # grpc-stubs leaves grpc.aio.ClientInterceptor unusable as a type
    """Interceptors that open a client span per call and send its context, for a channel opened now."""
    if _provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    interceptors: list[Any] = aio_client_interceptors(tracer_provider=_provider)  # type: ignore[no-untyped-call]
    return interceptors


class _MetadataGetter(Getter[Mapping[str, str]]):
    def get(self, carrier: Mapping[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        return None if value is None else [value]

    def keys(self, carrier: Mapping[str, str]) -> list[str]:
        return list(carrier)


_GETTER = _MetadataGetter()


def extract(metadata: Iterable[tuple[str, Any]]) -> otel_context.Context:
    """The caller's trace context from gRPC invocation metadata (an empty context when it sent none)."""
    carrier = {key: value for key, value in metadata if isinstance(value, str)}
    return PROPAGATOR.extract(carrier, getter=_GETTER)


@contextmanager
def frame_span(camera_id: str, frame_id: str) -> Iterator[Origin]:
    """A frame's own trace for the block (its admission): a root span linked to the call that brought it.

    Not a child of that call: a camera's PushFrames stream lasts hours, and one trace per frame is what an
    operator follows (and what the sampler keeps or drops as a whole). Yields the frame's :class:`Origin`.
    """
    if _provider is None:
        yield Origin.current()
        return
    stream = trace.get_current_span().get_span_context()
    span = tracer().start_span(
        "ingest.frame",
        context=otel_context.Context(),
        links=[trace.Link(stream)] if stream.is_valid else (),
        attributes={"anpr.camera_id": camera_id, "anpr.frame_id": frame_id},
    )
    with trace.use_span(span, end_on_exit=True):
        yield Origin.current()


def record_span(name: str, origin: Origin | None, attributes: Mapping[str, Any] | None = None) -> None:
    """A finished span from ``origin.started_ns`` until now under ``origin``'s span (a queue wait, for one)."""
    if _provider is None or origin is None or origin.span is None:
        return
    parent = trace.set_span_in_context(trace.NonRecordingSpan(origin.span))
    span = tracer().start_span(name, context=parent, start_time=origin.started_ns, attributes=attributes)
    span.end()


@contextmanager
def batch_span(
    name: str, origins: Iterable[Origin | None], attributes: Mapping[str, Any] | None = None
) -> Iterator[Origin]:
    """Run the block as work on behalf of every origin: a span under the first one's span, linked to the others,
    with the first one's request id as the current request id (so calls made inside forward both).

    Yields the batch's own :class:`Origin` (its request id and span), for work it hands on.
    """
    given = [origin for origin in origins if origin is not None]
    request_id = next((origin.request_id for origin in given if origin.request_id), None)
    token = request_id_var.set(request_id) if request_id else None
    try:
        if _provider is None:
            yield Origin(request_id, None, time.time_ns())
            return
        # Many frames of a batch may share a span (a replayed pass): each parent or link once.
        unique = {(o.span.trace_id, o.span.span_id): o.span for o in given if o.span is not None}
        contexts = list(unique.values())
        parent = trace.set_span_in_context(trace.NonRecordingSpan(contexts[0])) if contexts else otel_context.Context()
        span = tracer().start_span(
            name, context=parent, links=[trace.Link(c) for c in contexts[1:]], attributes=attributes
        )
        with trace.use_span(span, end_on_exit=True):
            yield Origin(request_id, span.get_span_context(), time.time_ns())
    finally:
        if token is not None:
            request_id_var.reset(token)


def log_ids() -> dict[str, str]:
    """trace_id and span_id of the current span, as hex, for log records (empty outside a recorded span)."""
    span = trace.get_current_span().get_span_context()
    if not span.is_valid:
        return {}
    return {"trace_id": format(span.trace_id, "032x"), "span_id": format(span.span_id, "016x")}
