"""W3C trace context from enqueue to handler (actors/tracing.py, docs/TRACING.md).

The spans are read from an in-memory exporter on an SDK tracer provider that is in place for this
module only (tests/otel.py), cleared around each test. The paths without OpenTelemetry, or with
it but no provider, run in a subprocess of their own.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from actors.tracing import (
    TRACEPARENT,
    TRACESTATE,
    available,
    enqueue_span,
    inject,
    run_span,
)
from tests.otel import recording

ROOT = Path(__file__).resolve().parents[2]
REMOTE_TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
REMOTE_SPAN_ID = 0xB7AD6B7169203331
REMOTE = f"00-{REMOTE_TRACE_ID:032x}-{REMOTE_SPAN_ID:016x}-01"
SUBPROCESS_DEADLINE_S = 30


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    with recording() as collected:  # taken away again after this module (tests/otel.py)
        yield collected


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    exporter.clear()
    yield exporter
    exporter.clear()


def _job(meta: Any = None, attempt: int = 1, **fields: Any) -> dict[str, Any]:
    return {"id": "j1", "type": "email", "queue": "mail", "attempt": attempt, "args": []} | {
        "meta": meta,
        **fields,
    }


def _named(spans: InMemorySpanExporter, prefix: str) -> list[ReadableSpan]:
    return [span for span in spans.get_finished_spans() if span.name.startswith(prefix)]


def _header(span: trace.Span) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def _current() -> trace.SpanContext:
    return trace.get_current_span().get_span_context()


def _enqueued(job_type: str = "email", queue: str | None = "mail") -> dict[str, Any]:
    """The meta a client would send: injected inside the enqueue span."""
    with enqueue_span(job_type, queue):
        meta = inject({"owner": "test"})
    assert meta is not None
    return meta


def test_opentelemetry_is_available_here():
    assert available()


# -- inject ---------------------------------------------------------------------------------------


def test_inject_under_an_active_span_adds_its_traceparent_to_a_copy_of_meta(spans):
    meta = {"owner": "test"}
    with trace.get_tracer("test").start_as_current_span("request") as span:
        injected = inject(meta)
    assert injected == {"owner": "test", TRACEPARENT: _header(span)}
    assert meta == {"owner": "test"}  # the caller's dict is not touched


def test_inject_builds_meta_when_there_was_none(spans):
    with trace.get_tracer("test").start_as_current_span("request") as span:
        injected = inject(None)
    assert injected == {TRACEPARENT: _header(span)}


def test_a_traceparent_the_caller_put_in_meta_wins(spans):
    meta = {TRACEPARENT: REMOTE}
    with trace.get_tracer("test").start_as_current_span("request"):
        assert inject(meta) is meta


def test_without_a_current_span_inject_returns_meta_itself(spans):
    meta = {"owner": "test"}
    assert inject(meta) is meta
    assert inject(None) is None


def test_the_tracestate_travels_with_the_traceparent(spans):
    state = trace.TraceState([("vendor", "x1")])
    remote = trace.SpanContext(REMOTE_TRACE_ID, REMOTE_SPAN_ID, True, trace.TraceFlags(1), state)
    with trace.use_span(trace.NonRecordingSpan(remote)):
        meta = inject(None)
    assert meta == {TRACEPARENT: REMOTE, TRACESTATE: "vendor=x1"}
    with run_span(_job(meta)):
        pass
    (run,) = _named(spans, "corral run")
    assert run.context.trace_state.get("vendor") == "x1"


# -- from enqueue to run --------------------------------------------------------------------------


def test_a_job_runs_in_a_child_span_of_the_span_it_was_enqueued_in(spans):
    meta = _enqueued()
    with run_span(_job(meta)) as span:
        seen = _current()  # what a handler sees
        span.outcome({"result": 1})
    (enqueue,) = _named(spans, "corral enqueue")
    (run,) = _named(spans, "corral run")
    assert (enqueue.name, enqueue.kind) == ("corral enqueue email", SpanKind.PRODUCER)
    assert dict(enqueue.attributes) == {
        "messaging.system": "corral",
        "messaging.destination.name": "mail",
        "messaging.operation": "publish",
    }
    assert (run.name, run.kind) == ("corral run email", SpanKind.CONSUMER)
    assert run.parent.span_id == enqueue.context.span_id and run.parent.is_remote
    assert run.context.trace_id == enqueue.context.trace_id == seen.trace_id
    assert seen.span_id == run.context.span_id
    assert dict(run.attributes) == {
        "messaging.system": "corral",
        "messaging.operation": "process",
        "messaging.message.id": "j1",
        "corral.job.type": "email",
        "messaging.destination.name": "mail",
        "corral.job.attempt": 1,
    }
    assert run.status.status_code is StatusCode.UNSET
    assert not _current().is_valid  # detached again after the block


def test_an_enqueue_span_without_a_queue_names_no_destination(spans):
    _enqueued(queue=None)
    (enqueue,) = _named(spans, "corral enqueue")
    assert "messaging.destination.name" not in enqueue.attributes


def test_every_attempt_of_a_job_is_a_span_under_the_same_enqueue_span(spans):
    meta = _enqueued()
    for attempt in (1, 2, 3):
        with run_span(_job(meta, attempt=attempt)):
            pass
    (enqueue,) = _named(spans, "corral enqueue")
    runs = _named(spans, "corral run")
    assert [run.attributes["corral.job.attempt"] for run in runs] == [1, 2, 3]
    assert {run.parent.span_id for run in runs} == {enqueue.context.span_id}
    assert len({run.context.span_id for run in runs}) == 3


def test_a_handlers_own_spans_are_children_of_the_run_span(spans):
    with run_span(_job(_enqueued())), trace.get_tracer("handler").start_as_current_span("send"):
        pass
    (run,) = _named(spans, "corral run")
    (inner,) = _named(spans, "send")
    assert inner.parent.span_id == run.context.span_id


def test_a_handler_on_a_worker_thread_sees_the_trace_of_its_job(spans):
    meta = _enqueued()

    def handler_thread() -> tuple[int, int, bool]:
        with run_span(_job(meta)):
            seen = _current()
        return seen.trace_id, seen.span_id, _current().is_valid

    # The enqueueing thread is inside another trace meanwhile: none of it may reach the handler.
    with (
        trace.get_tracer("test").start_as_current_span("elsewhere") as elsewhere,
        ThreadPoolExecutor(1) as pool,
    ):
        trace_id, span_id, valid_after = pool.submit(handler_thread).result(timeout=5)
    (enqueue,) = _named(spans, "corral enqueue")
    (run,) = _named(spans, "corral run")
    assert trace_id == enqueue.context.trace_id != elsewhere.get_span_context().trace_id
    assert span_id == run.context.span_id
    assert not valid_after


def test_concurrent_asyncio_tasks_each_see_only_their_own_trace(spans):
    first, second = _enqueued("first"), _enqueued("second")
    seen: dict[str, list[int]] = {"first": [], "second": []}

    async def handler(name: str, meta: dict[str, Any], both_inside: asyncio.Barrier) -> None:
        with run_span(_job(meta, type=name)):
            seen[name].append(_current().trace_id)
            await both_inside.wait()  # the other task is now inside its own run span
            await asyncio.sleep(0)
            seen[name].append(_current().trace_id)
        seen[name].append(_current().trace_id)

    async def main() -> None:
        both_inside = asyncio.Barrier(2)
        await asyncio.wait_for(
            asyncio.gather(
                handler("first", first, both_inside), handler("second", second, both_inside)
            ),
            timeout=5,
        )

    asyncio.run(main())
    enqueues = {span.name: span.context.trace_id for span in _named(spans, "corral enqueue")}
    assert enqueues["corral enqueue first"] != enqueues["corral enqueue second"]
    assert seen["first"] == [enqueues["corral enqueue first"]] * 2 + [0]
    assert seen["second"] == [enqueues["corral enqueue second"]] * 2 + [0]


# -- outcomes -------------------------------------------------------------------------------------


def test_an_error_outcome_marks_the_run_span_failed_with_an_exception_event(spans):
    error = {
        "type": "SMTPError",
        "message": "relay refused",
        "retryable": True,
        "backtrace": ["Traceback (most recent call last):", "SMTPError: relay refused"],
    }
    with run_span(_job(_enqueued())) as span:
        span.outcome({"error": error})
    (run,) = _named(spans, "corral run")
    assert run.status.status_code is StatusCode.ERROR
    assert run.status.description == "SMTPError: relay refused"
    assert run.attributes["error.type"] == "SMTPError"
    (event,) = run.events
    assert event.name == "exception"
    assert dict(event.attributes) == {
        "exception.type": "SMTPError",
        "exception.message": "relay refused",
        "exception.stacktrace": "Traceback (most recent call last):\nSMTPError: relay refused",
    }


def test_an_error_without_a_backtrace_records_no_stacktrace(spans):
    with run_span(_job(None)) as span:
        span.outcome({"error": {"type": "Timeout", "message": "too slow", "retryable": True}})
    (run,) = _named(spans, "corral run")
    (event,) = run.events
    assert "exception.stacktrace" not in event.attributes
    assert run.status.status_code is StatusCode.ERROR


# -- what a client may send -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "meta",
    [
        None,
        {},
        {TRACEPARENT: "garbage"},
        {TRACEPARENT: ""},
        {TRACEPARENT: 5},
        {TRACEPARENT: [REMOTE]},
        {TRACEPARENT: [5, 6]},
        {TRACEPARENT: REMOTE.encode()},
        {TRACEPARENT: None},
        {TRACEPARENT: f"00-{0:032x}-{REMOTE_SPAN_ID:016x}-01"},  # all-zero trace id
        {TRACEPARENT: REMOTE + "-extra"},  # version 00 allows nothing after the flags
        {TRACEPARENT: "x" * 10_000},
        "not a map",
        [TRACEPARENT, REMOTE],
    ],
    ids=repr,
)
def test_a_missing_or_malformed_traceparent_starts_a_new_trace(spans, meta):
    with run_span(_job(meta)) as span:
        seen = _current()
        span.outcome({"result": None})
    (run,) = _named(spans, "corral run")
    assert run.parent is None
    assert seen.span_id == run.context.span_id


def test_a_malformed_tracestate_is_dropped_and_the_parent_kept(spans):
    with run_span(_job({TRACEPARENT: REMOTE, TRACESTATE: 7})):
        pass
    (run,) = _named(spans, "corral run")
    assert (run.context.trace_id, run.parent.span_id) == (REMOTE_TRACE_ID, REMOTE_SPAN_ID)


def test_a_job_without_a_meta_key_runs_as_a_root(spans):
    job = _job()
    del job["meta"]
    with run_span(job):
        pass
    (run,) = _named(spans, "corral run")
    assert run.parent is None


# -- other installations, each in a fresh process -------------------------------------------------


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_DEADLINE_S,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_without_opentelemetry_nothing_changes():
    out = _python(f"""
        import sys
        sys.modules["opentelemetry"] = None  # as if the `tracing` extra were not installed
        from actors import tracing
        assert not tracing.available()
        meta = {{"owner": "test"}}
        with tracing.enqueue_span("email", "mail") as entered:
            assert entered is None
            assert tracing.inject(meta) is meta and tracing.inject(None) is None
        job = {{"id": "j1", "type": "email", "meta": {{"traceparent": {REMOTE!r}}}}}
        with tracing.run_span(job) as span:
            span.outcome({{"error": {{"type": "E", "message": "m", "retryable": True}}}})
        with tracing.run_span({{}}) as span:
            span.outcome({{"result": 1}})
        print("ok")
        """)
    assert out == "ok"


def test_with_the_api_but_no_provider_the_trace_passes_through_and_a_later_provider_is_used():
    out = _python(f"""
        from opentelemetry import trace
        from actors import tracing

        def current():
            return trace.get_current_span().get_span_context()

        job = {{"id": "j1", "type": "email", "queue": "mail", "attempt": 1,
               "meta": {{"traceparent": {REMOTE!r}}}}}
        with tracing.enqueue_span("email", "mail"):
            assert tracing.inject(None) is None  # no span, so nothing to carry
        with tracing.run_span(job) as span:  # no span made, but the handler is in the trace
            assert (current().trace_id, current().span_id) == ({REMOTE_TRACE_ID}, {REMOTE_SPAN_ID})
            assert tracing.inject(None) == {{"traceparent": {REMOTE!r}}}
            span.outcome({{"result": 1}})
        assert not current().is_valid

        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)  # after corral's first spans were skipped
        with tracing.run_span(job):
            pass
        (run,) = exporter.get_finished_spans()
        assert run.parent.span_id == {REMOTE_SPAN_ID}
        print("ok")
        """)
    assert out == "ok"
