"""W3C trace context from enqueue to handler, and spans around both when OpenTelemetry is there.

A client calls `inject` inside `enqueue_span`, so the job's `meta` carries the producer span's
`traceparent` (and `tracestate`); the worker wraps each attempt in `run_span(job)`, a consumer
span whose parent is read back from that `meta`. Every attempt of a job (retries, recoveries)
reads the same `meta`, so each attempt is a span of its own under the same enqueue span.

Without `opentelemetry-api` nothing changes: `inject` hands `meta` back as it came and the spans
are shared no-op objects (no allocation per call). See docs/TRACING.md.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Protocol

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.context import Context
    from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider, SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    from opentelemetry.trace.status import Status, StatusCode
except ImportError:  # the `tracing` extra is not installed: every function below is a no-op
    _OTEL = False
else:
    _OTEL = True
    # The W3C propagator itself, not the global one (`opentelemetry.propagate`): the `meta` keys
    # are part of our job format (docs/TRACING.md), stored with the job and read back by a worker
    # that may run another configuration. A global B3 or Jaeger propagator would write other keys
    # the worker might not read, and the default composite one adds `baggage`, which can carry
    # anything into a stored, listed job. One fixed propagator keeps producer and consumer agreed.
    _PROPAGATOR = TraceContextTextMapPropagator()
    # No provider set (or the explicit no-op one): OpenTelemetry would only hand out
    # non-recording spans. Skipping the tracer then cut run_span + inject per job from 8.6 to
    # 1.9 us, or from 16 to 8.8 us with a traceparent (docs/TRACING.md, "Cost"). Checked on
    # every call, so a provider set later applies; off the API's global, ~0.1 us (_recording).
    _UNSET_PROVIDERS = (ProxyTracerProvider, NoOpTracerProvider)
    # A provider named in the environment, which get_tracer_provider makes on its first call;
    # read once, as the variable is set before a process starts (opentelemetry-instrument).
    _PROVIDER_NAMED = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
    _UNREAD = object()  # an API without that global: always ask get_tracer_provider

TRACEPARENT = "traceparent"  # keys in a job's `meta` map (W3C Trace Context header names)
TRACESTATE = "tracestate"

log = logging.getLogger(__name__)


def available() -> bool:
    """True when OpenTelemetry (the API) can be imported, so spans and propagation are on."""
    return _OTEL


class RunSpan(Protocol):
    """What the worker tells the span of one attempt before it ends."""

    def outcome(self, outcome: dict[str, Any]) -> None:
        """The attempt's outcome: `{"result": ...}` or `{"error": {type, message, retryable,
        backtrace?}}` (the `Finished` fields of the worker)."""


class _NoSpan:
    """The span without OpenTelemetry or without a tracer provider: ignores everything."""

    __slots__ = ()

    def outcome(self, outcome: dict[str, Any]) -> None:
        pass


_NO_SPAN = _NoSpan()
# nullcontext keeps no state between uses, so one instance serves every call and every thread.
_NOTHING: AbstractContextManager[None] = nullcontext()
_NOT_RUN: AbstractContextManager[RunSpan] = nullcontext(_NO_SPAN)


def tracing(job: dict[str, Any], recording: bool) -> bool:
    """Whether an attempt of `job` needs `run_span`: a tracer provider is set (`recording`, read
    once per batch with `recording()`), or its `meta` carries a trace a handler should see.
    False skips the span's ~0.9 us on every job of a cluster that does not trace."""
    if recording:
        return True
    meta = job.get("meta")
    return _OTEL and bool(meta) and isinstance(meta, Mapping) and TRACEPARENT in meta


def recording() -> bool:
    """True when OpenTelemetry is installed with a tracer provider set: spans are made."""
    return _OTEL and _recording()


def enqueue_span(job_type: str, queue: str | None) -> AbstractContextManager[None]:
    """A PRODUCER span `corral enqueue <job_type>` (messaging.system="corral",
    messaging.destination.name=queue, messaging.operation="publish") when OpenTelemetry is
    installed with a tracer provider; a shared no-op context manager otherwise."""
    if not _OTEL or not _recording():
        return _NOTHING
    return _enqueue(job_type, queue)


def inject(meta: dict[str, Any] | None) -> dict[str, Any] | None:
    """`meta` with the `traceparent` (and `tracestate`, if any) of the current context, as a new
    dict. `meta` itself, untouched, when OpenTelemetry is missing, no valid span is current, or
    `meta` already has a `traceparent` (a caller's explicit one wins)."""
    if not _OTEL or (meta is not None and TRACEPARENT in meta):
        return meta
    if not trace.get_current_span().get_span_context().is_valid:
        return meta
    carrier: dict[str, Any] = {}
    _PROPAGATOR.inject(carrier)
    return {**meta, **carrier} if meta else carrier


def run_span(job: dict[str, Any]) -> AbstractContextManager[RunSpan]:
    """A CONSUMER span `corral run <type>` for one attempt of `job` (a Job map of PROTOCOL.md),
    child of the `traceparent` in its `meta`, or a new root when there is none or it is
    malformed. Its context is attached for the `with` block, in the calling thread or asyncio
    task only (OpenTelemetry's context lives in a contextvar), so a handler called inside sees it
    as the current span and its own spans are its children.

    With OpenTelemetry but no tracer provider no span is made, but a valid parent from `meta`
    is still attached (as OpenTelemetry's no-op tracer would do), so a handler that enqueues
    further jobs passes the trace on. Without OpenTelemetry: a shared no-op."""
    if not _OTEL:
        return _NOT_RUN
    parent = _extract(job.get("meta"))
    if _recording():
        return _run(job, parent if parent is not None else Context())
    if parent is None:
        return _NOT_RUN
    return _Attached(parent)


# -- with OpenTelemetry ---------------------------------------------------------------------------


def _recording() -> bool:
    """True when a real tracer provider is set (an SDK one, usually), so spans are worth making.

    Asked once per job, so the usual answer (no provider) is read off the API's global first:
    `get_tracer_provider` also looks the environment up on every call (~1.3 us)."""
    if getattr(trace, "_TRACER_PROVIDER", _UNREAD) is None and not _PROVIDER_NAMED:
        return False
    return not isinstance(trace.get_tracer_provider(), _UNSET_PROVIDERS)


@functools.cache
def _tracer() -> trace.Tracer:
    # Fetched on first use rather than at import: `get_tracer` may build the provider named by
    # OTEL_PYTHON_TRACER_PROVIDER, and importing corral should not. Only called once a provider
    # is set (_recording), and a ProxyTracer would follow a later one anyway.
    return trace.get_tracer("corral")


@contextmanager
def _enqueue(job_type: str, queue: str | None) -> Iterator[None]:
    attributes = {"messaging.system": "corral", "messaging.operation": "publish"}
    if queue is not None:
        attributes["messaging.destination.name"] = queue
    with _tracer().start_as_current_span(
        f"corral enqueue {job_type}", kind=SpanKind.PRODUCER, attributes=attributes
    ):
        yield


@contextmanager
def _run(job: dict[str, Any], parent: Context) -> Iterator[RunSpan]:
    attributes: dict[str, str | int] = {
        "messaging.system": "corral",
        "messaging.operation": "process",
    }
    for key, name in _RUN_ATTRIBUTES:
        value = job.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            attributes[name] = value
    name = f"corral run {job.get('type')}"
    with _tracer().start_as_current_span(
        name, context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    ) as span:
        yield _Run(span)


_RUN_ATTRIBUTES = (
    ("id", "messaging.message.id"),
    ("type", "corral.job.type"),
    ("queue", "messaging.destination.name"),
    ("attempt", "corral.job.attempt"),
)


class _Run:
    """The RunSpan over a real span: an error outcome marks it failed, with an exception event."""

    __slots__ = ("_span",)

    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def outcome(self, outcome: dict[str, Any]) -> None:
        error = outcome.get("error")
        if error is None:
            return  # success leaves the status unset, as OpenTelemetry asks of libraries
        if not isinstance(error, Mapping):
            error = {"message": error}
        kind = str(error.get("type") or "Error")
        message = str(error.get("message") or "")
        attributes = {"exception.type": kind, "exception.message": message}
        backtrace = error.get("backtrace")
        if backtrace:
            attributes["exception.stacktrace"] = (
                backtrace if isinstance(backtrace, str) else "\n".join(map(str, backtrace))
            )
        self._span.add_event("exception", attributes)
        self._span.set_attribute("error.type", kind)
        self._span.set_status(Status(StatusCode.ERROR, f"{kind}: {message}"))


class _Attached:
    """Attaches a context for a `with` block, in the thread or task that enters it."""

    __slots__ = ("_context", "_token")

    def __init__(self, context: Context) -> None:
        self._context = context

    def __enter__(self) -> RunSpan:
        self._token = otel_context.attach(self._context)
        return _NO_SPAN

    def __exit__(self, *exc_info: object) -> None:
        otel_context.detach(self._token)


def _extract(meta: object) -> Context | None:
    """The context of the remote parent in `meta`, or None when there is no valid one.

    `meta` comes from any client (the OJS gateway takes it from HTTP bodies), so only strings
    reach the propagator (it raises on an int or a list of ints), and anything it still raises
    is logged: a bad header costs the job its parent, never its run.
    """
    if not meta or not isinstance(meta, Mapping):  # most jobs: no meta at all
        return None
    traceparent = meta.get(TRACEPARENT)
    if not isinstance(traceparent, str):
        return None
    carrier = {TRACEPARENT: traceparent}
    tracestate = meta.get(TRACESTATE)
    if isinstance(tracestate, str):
        carrier[TRACESTATE] = tracestate
    try:
        context = _PROPAGATOR.extract(carrier, context=Context())
    except Exception:
        log.debug("unreadable trace context %r: the run starts a new trace", carrier, exc_info=True)
        return None
    if not trace.get_current_span(context).get_span_context().is_valid:
        return None
    return context
