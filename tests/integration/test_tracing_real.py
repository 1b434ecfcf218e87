"""A trace from the code that enqueues to the handler that runs, over real sockets: the client's
enqueue span and the worker's run span share the caller's trace, the handler sees it as its
current span (sync or async), and each attempt of a retried job is a run span of its own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from actors.worker import current_job
from nodes import AsyncClient, WorkerNode
from tests.otel import recording

JOB_TIMEOUT_S = 10.0
FAST_RETRY = {"initial_interval": 0.05, "jitter": False}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    with recording() as exporter:
        yield exporter


def _seen() -> dict[str, Any]:
    """What a handler knows of its trace."""
    context = trace.get_current_span().get_span_context()
    job = current_job()
    assert job is not None
    return {"trace_id": f"{context.trace_id:032x}", "traceparent": job.traceparent}


@pytest.fixture
def address(coordinator) -> Iterator[str]:
    attempts: dict[str, int] = {}
    lock = threading.Lock()

    def flaky() -> dict[str, Any]:
        with lock:
            attempts["flaky"] = attempts.get("flaky", 0) + 1
            if attempts["flaky"] == 1:
                raise RuntimeError("first attempt fails")
        return _seen()

    async def seen_async() -> dict[str, Any]:
        await asyncio.sleep(0)
        return _seen()

    node = coordinator(heartbeat_interval=0.2)
    handlers = {"seen": _seen, "seen_async": seen_async, "flaky": flaky}
    worker = WorkerNode(node.address, handlers=handlers, concurrency=2).start()
    yield node.address
    worker.stop(timeout=0)


def _trace_id(span: Any) -> str:
    return f"{span.context.trace_id:032x}"


def test_a_handler_sees_the_trace_it_was_enqueued_in_and_spans_chain(address, clients, spans):
    client = clients(address)
    tracer = trace.get_tracer("checkout")
    with tracer.start_as_current_span("checkout") as checkout:
        sync_job = client.enqueue("seen")
        [async_job] = client.enqueue_many([{"type": "seen_async"}])
    trace_id = f"{checkout.get_span_context().trace_id:032x}"

    for job in (sync_job, async_job):
        seen = job.result(JOB_TIMEOUT_S)
        assert seen["trace_id"] == trace_id
        assert seen["traceparent"].split("-")[1] == trace_id
        assert client.get(job).raw["meta"]["traceparent"] == seen["traceparent"]

    finished = spans.get_finished_spans()
    enqueues = [s for s in finished if s.kind is SpanKind.PRODUCER]
    runs = [s for s in finished if s.kind is SpanKind.CONSUMER]
    assert sorted(s.name for s in enqueues) == ["corral enqueue seen", "corral enqueue seen_async"]
    assert sorted(s.name for s in runs) == ["corral run seen", "corral run seen_async"]
    assert {_trace_id(s) for s in enqueues + runs} == {trace_id}
    assert all(s.parent.span_id == checkout.get_span_context().span_id for s in enqueues)
    enqueue_ids = {s.context.span_id for s in enqueues}
    assert all(s.parent.span_id in enqueue_ids for s in runs)


def test_each_attempt_of_a_retried_job_is_a_run_span_under_the_same_enqueue(
    address, clients, spans
):
    client = clients(address)
    job = client.enqueue("flaky", max_attempts=2, retry=FAST_RETRY)
    assert job.result(JOB_TIMEOUT_S)["traceparent"] is not None

    finished = spans.get_finished_spans()
    [enqueue] = [s for s in finished if s.kind is SpanKind.PRODUCER]
    runs = sorted((s for s in finished if s.kind is SpanKind.CONSUMER), key=lambda s: s.start_time)
    assert [s.attributes["corral.job.attempt"] for s in runs] == [1, 2]
    assert [s.status.status_code for s in runs] == [StatusCode.ERROR, StatusCode.UNSET]
    assert all(s.parent.span_id == enqueue.context.span_id for s in runs)


def test_an_async_client_enqueue_carries_the_trace_of_the_awaiting_task(address, spans):
    async def run() -> tuple[str, dict[str, Any]]:
        async with AsyncClient(address) as client:
            with trace.get_tracer("api").start_as_current_span("request") as request:
                handle = await client.enqueue("seen_async")
            return f"{request.get_span_context().trace_id:032x}", await handle.result(
                JOB_TIMEOUT_S
            )

    trace_id, seen = asyncio.run(run())
    assert seen["trace_id"] == trace_id


def test_without_a_tracer_provider_nothing_is_added_to_the_job(address, clients):
    client = clients(address)
    job = client.enqueue("seen", meta={"tenant": "a"})
    seen = job.result(JOB_TIMEOUT_S)
    assert seen["traceparent"] is None
    assert client.get(job).raw["meta"] == {"tenant": "a"}
