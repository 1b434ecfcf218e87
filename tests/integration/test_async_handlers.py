"""`async def` handlers on a real coordinator over TCP loopback: they run as tasks on the worker
node's one event loop, count against `concurrency`, see `current_job()`, report progress, and a
cancel of their job cancels the task mid-await. Sync handlers on the same worker are unchanged.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from actors.worker import current_job
from nodes import WorkerNode
from tests.conftest import wait_for

JOB_TIMEOUT_S = 10.0
FAST_RETRY = {"initial_interval": 0.05, "jitter": False}


class Gate:
    """What the handlers of one test share: a gate they wait at, counted while they wait."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside = 0
        self.most_inside = 0
        self.loops: set[int] = set()
        self.threads: set[str] = set()
        self.cancelled: list[str] = []
        self.open = threading.Event()

    def enter(self) -> None:
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
            self.loops.add(id(asyncio.get_running_loop()))
            self.threads.add(threading.current_thread().name)

    def leave(self) -> None:
        with self.lock:
            self.inside -= 1

    async def wait_open(self) -> None:
        while not self.open.is_set():
            await asyncio.sleep(0.005)


@pytest.fixture
def gate() -> Iterator[Gate]:
    gate = Gate()
    yield gate
    gate.open.set()


@pytest.fixture
def cluster(coordinator, clients, gate) -> Iterator[Callable[..., Any]]:
    """A coordinator beating every 0.1 s, a client, and a worker with async and sync handlers."""
    started: list[WorkerNode] = []

    async def gated(value: int) -> int:
        gate.enter()
        try:
            await gate.wait_open()
            return value * 2
        finally:
            gate.leave()

    async def whoami() -> dict[str, Any]:
        job = current_job()
        assert job is not None
        await asyncio.sleep(0)
        return {"id": job.id, "attempt": job.attempt, "type": job.type}

    async def blocking() -> None:
        current_job().sleep(1)  # type: ignore[union-attr]

    async def flaky() -> str:
        job = current_job()
        assert job is not None
        if job.attempt == 1:
            raise ValueError("first attempt fails")
        return "second attempt"

    async def hang() -> None:
        job = current_job()
        assert job is not None
        try:
            job.progress(0.25, "a quarter")
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            gate.cancelled.append(job.id)
            raise

    handlers = {
        "gated": gated,
        "whoami": whoami,
        "flaky": flaky,
        "blocking": blocking,
        "hang": hang,
        "sync_square": lambda x: x * x,
    }

    def start(concurrency: int = 4) -> tuple[Any, WorkerNode]:
        node = coordinator(heartbeat_interval=0.1)
        worker = WorkerNode(node.address, handlers=handlers, concurrency=concurrency).start()
        started.append(worker)
        return clients(node.address), worker

    yield start
    for worker in started:
        worker.stop(timeout=0)


def test_async_handlers_run_on_one_loop_see_their_job_and_sit_beside_sync_ones(cluster, gate):
    client, _ = cluster(concurrency=8)
    gate.open.set()

    handles = [client.enqueue("gated", [n]) for n in range(20)]
    who = client.enqueue("whoami")
    square = client.enqueue("sync_square", [7])

    assert [h.result(JOB_TIMEOUT_S) for h in handles] == [n * 2 for n in range(20)]
    assert who.result(JOB_TIMEOUT_S) == {"id": who.id, "attempt": 1, "type": "whoami"}
    assert square.result(JOB_TIMEOUT_S) == 49
    assert len(gate.loops) == 1, "every async handler ran on the node's one loop"
    assert len(gate.threads) == 1


def test_async_handlers_count_against_concurrency(cluster, gate):
    client, worker = cluster(concurrency=3)

    handles = [client.enqueue("gated", [n]) for n in range(10)]
    wait_for(lambda: gate.inside == 3, what="three handlers awaiting at the gate")
    assert worker.status()["running"] == 3
    assert client.stats()["queues"]["default"]["available"] == 7
    gate.open.set()

    assert [h.result(JOB_TIMEOUT_S) for h in handles] == [n * 2 for n in range(10)]
    assert gate.most_inside == 3


def test_a_failing_async_handler_fails_its_attempt_with_its_error_and_is_retried(cluster):
    client, _ = cluster()

    job = client.enqueue("flaky", max_attempts=2, retry=FAST_RETRY)

    assert job.result(JOB_TIMEOUT_S) == "second attempt"
    errors = client.get(job).errors
    assert [(e["type"], e["message"], e["attempt"]) for e in errors] == [
        ("ValueError", "first attempt fails", 1)
    ]
    assert any("raise ValueError" in line for line in errors[0]["backtrace"])


def test_a_blocking_sleep_in_an_async_handler_fails_its_attempt_saying_what_to_await(cluster):
    client, _ = cluster()

    done = client.get(client.enqueue("blocking", max_attempts=1), wait=JOB_TIMEOUT_S)

    assert done.state == "discarded"
    assert done.errors[-1]["type"] == "RuntimeError"
    assert "await current_job().asleep(s)" in done.errors[-1]["message"]


def test_an_async_handler_cancelled_mid_await_has_its_task_cancelled_and_frees_its_slot(
    cluster, gate
):
    client, worker = cluster(concurrency=1)
    job = client.enqueue("hang")
    wait_for(lambda: client.get(job).raw.get("progress"), what="the job's progress reported")
    assert client.get(job).raw["progress"]["fraction"] == 0.25

    assert client.cancel(job) == "cancelled"

    wait_for(lambda: gate.cancelled == [job.id], what="the handler's task cancelled")
    gate.open.set()
    assert client.enqueue("gated", [5]).result(JOB_TIMEOUT_S) == 10  # the one slot is free
    assert client.get(job).state == "cancelled"
    wait_for(lambda: worker.status()["running"] == 0)


def test_a_stop_past_its_grace_fails_a_running_async_job_as_shutdown_and_cancels_it(
    cluster, gate
):
    client, worker = cluster(concurrency=2)
    job = client.enqueue("hang", max_attempts=1)
    wait_for(lambda: client.get(job).state == "active")

    worker.stop(timeout=0.2)

    done = client.get(job, wait=JOB_TIMEOUT_S)
    assert done.state == "discarded"
    assert done.errors[-1]["type"] == "Shutdown"
    wait_for(lambda: gate.cancelled == [job.id], what="the handler's task cancelled")
