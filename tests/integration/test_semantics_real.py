"""Job semantics over real sockets: a `nodes.Coordinator` on TCP loopback, `nodes.WorkerNode`s
in this process and `nodes.Client`, one test (or two) per area of the job-semantics issue.

Priority and queue order, scheduled jobs (and `corral enqueue --in`), retries with the dead set
and manual retry (`Client.retry`, `corral retry`), deleting ended jobs (`Client.delete`, `corral
delete`), unique keys, cancelling an active job, result
size limits, label routing, atomic batches and handler defaults. Every wait is `wait_for` or a
request with a deadline; handlers block only on events with timeouts, released at teardown.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from actors.worker import current_job
from nodes import Client, Coordinator, WorkerNode, cli
from nodes.client import JobFailed
from tests.conftest import wait_for
from transport.errors import BadRequest, UnknownJob
from transport.validation.limits import Limits

HEARTBEAT_INTERVAL_S = 0.2  # workers learn of cancels on their next beat
STOP_DEADLINE_S = 10.0
GATE_TIMEOUT_S = 20.0  # no handler blocks longer than this, whatever a test does


@pytest.fixture
def node(coordinator: Callable[..., Coordinator]) -> Callable[..., Coordinator]:
    """A coordinator with fast beats (and the shared fast reaper of tests/conftest.py)."""

    def start(**overrides: Any) -> Coordinator:
        return coordinator(**{"heartbeat_interval": HEARTBEAT_INTERVAL_S, **overrides})

    return start


class Gates:
    """Events handlers wait on; all are set at teardown so no handler outlives its test."""

    def __init__(self) -> None:
        self.made: list[threading.Event] = []

    def __call__(self) -> threading.Event:
        self.made.append(threading.Event())
        return self.made[-1]

    def release(self) -> None:
        for gate in self.made:
            gate.set()


@pytest.fixture
def gates() -> Iterator[Gates]:
    made = Gates()
    yield made
    made.release()


@pytest.fixture
def client_for(coordinator: Any) -> Iterator[Callable[[Coordinator], Client]]:
    clients: list[Client] = []

    def connect(node: Coordinator) -> Client:
        clients.append(Client(node.address, timeout=10.0))
        return clients[-1]

    yield connect
    for client in clients:
        client.close()


@pytest.fixture
def start_worker(coordinator: Any, gates: Gates) -> Iterator[Callable[..., WorkerNode]]:
    """Factory: a started WorkerNode on a coordinator; all stopped within a deadline."""
    started: list[WorkerNode] = []

    def start(
        node: Coordinator,
        handlers: dict[str, Callable[..., Any]] | None = None,
        register: Callable[[WorkerNode], None] | None = None,
        **options: Any,
    ) -> WorkerNode:
        worker = WorkerNode(connect=node.address, handlers=handlers, **options)
        if register is not None:
            register(worker)
        started.append(worker.start())
        return worker

    yield start
    gates.release()  # handlers blocked on a gate end now, so workers stop at once
    stuck = []
    for worker in started:
        stopper = threading.Thread(target=worker.stop, kwargs={"timeout": 1.0}, daemon=True)
        stopper.start()
        stopper.join(STOP_DEADLINE_S)
        if stopper.is_alive():
            stuck.append(worker)
    assert not stuck, f"{len(stuck)} workers did not stop within {STOP_DEADLINE_S} s"


def host_of(client: Client, job_id: str) -> str:
    hosts = {w["worker_id"]: w["hostname"] for w in client.stats()["workers"]}
    return hosts[client.get(job_id).raw["worker_id"]]


def attempt() -> int:
    job = current_job()
    assert job is not None
    return job.attempt


# -- ordering -------------------------------------------------------------------------------------


def test_a_worker_runs_jobs_by_its_queue_order_then_priority_then_age(
    node, client_for, start_worker
):
    coordinator = node()
    client = client_for(coordinator)
    plan = [
        ("low", 0, "low-old"),
        ("high", 0, "high-old"),
        ("low", 5, "low-urgent"),
        ("high", 9, "high-urgent"),
        ("high", -3, "high-lazy"),
        ("high", 0, "high-new"),
    ]
    for queue, priority, name in plan:
        client.enqueue("record", [name], queue=queue, priority=priority)
    ran: list[str] = []

    start_worker(coordinator, {"record": ran.append}, queues=["high", "low"], concurrency=1)

    wait_for(lambda: len(ran) == len(plan), timeout=10, what="every job ran")
    assert ran == ["high-urgent", "high-old", "high-new", "high-lazy", "low-urgent", "low-old"]


# -- scheduled jobs -------------------------------------------------------------------------------


def test_a_scheduled_job_runs_once_it_is_due_and_not_before(node, client_for, start_worker):
    coordinator = node()
    client = client_for(coordinator)
    start_worker(coordinator, {"stamp": time.time}, concurrency=1)
    due = time.time() + 0.5
    job = client.enqueue("stamp", scheduled_at=due)
    assert client.get(job).state == "scheduled"

    ran_at = job.result(timeout=10)
    assert ran_at >= due
    assert client.get(job).raw["started_at"] >= due


def test_corral_enqueue_in_seconds_schedules_the_job_that_far_ahead(
    node, client_for, start_worker, capsys
):
    coordinator = node()
    client = client_for(coordinator)
    start_worker(coordinator, {"stamp": time.time}, concurrency=1)
    before = time.time()
    assert cli.main(["enqueue", "stamp", "--in", "0.5", "--connect", coordinator.address]) == 0
    job_id = capsys.readouterr().out.strip()

    job = client.get(job_id)
    assert job.state == "scheduled"
    assert before + 0.5 <= job.raw["scheduled_at"] <= time.time() + 0.5
    assert client.get(job_id, wait=10).result >= job.raw["scheduled_at"]


# -- retries, the dead set and manual retry -------------------------------------------------------


def flaky_until_third_attempt() -> str:
    if attempt() <= 2:
        raise RuntimeError(f"attempt {attempt()} failed")
    return "ok"


def test_a_failing_job_is_retried_kept_when_discarded_and_retried_by_hand(
    node, client_for, start_worker
):
    coordinator = node()
    client = client_for(coordinator)
    start_worker(coordinator, {"flaky": flaky_until_third_attempt}, concurrency=1)
    job = client.enqueue("flaky", max_attempts=2, retry={"initial_interval": 0.1})

    with pytest.raises(JobFailed, match="attempt 2 failed"):
        job.result(timeout=10)
    dead = client.get(job)
    assert dead.state == "discarded" and dead.attempt == 2
    assert [(e["attempt"], e["type"], e["message"]) for e in dead.errors] == [
        (1, "RuntimeError", "attempt 1 failed"),
        (2, "RuntimeError", "attempt 2 failed"),
    ]
    assert dead.errors[1]["at"] - dead.errors[0]["at"] >= 0.05  # the jittered 0.1 s backoff
    assert client.stats()["queues"]["default"]["discarded"] == 1

    assert client.retry(job) == "available"
    assert job.result(timeout=10) == "ok"
    done = client.get(job)
    assert done.attempt == 3 and len(done.errors) == 2
    assert client.stats()["queues"]["default"]["discarded"] == 0


def test_corral_retry_puts_a_discarded_job_back(node, client_for, start_worker, capsys):
    coordinator = node()
    client = client_for(coordinator)
    start_worker(coordinator, {"flaky": flaky_until_third_attempt}, concurrency=1)
    job = client.enqueue("flaky", max_attempts=2, retry={"initial_interval": 0.1})
    with pytest.raises(JobFailed):
        job.result(timeout=10)

    assert cli.main(["retry", job, "--connect", coordinator.address]) == 0
    assert capsys.readouterr().out.strip() == "available"
    assert job.result(timeout=10) == "ok"


# -- deleting ended jobs (extension "Delete") -----------------------------------------------------


def test_a_client_deletes_an_ended_job_for_good_and_is_refused_one_still_running(
    node, client_for, start_worker, gates, tmp_path
):
    store = f"sqlite:///{tmp_path / 'corral.db'}"
    coordinator = node(store=store)
    client = client_for(coordinator)
    gate = gates()
    handlers = {"flaky": flaky_until_third_attempt, "hold": gate.wait}
    worker = start_worker(coordinator, handlers, concurrency=1)
    dead = client.enqueue("flaky", max_attempts=1, request_id="dead-1")
    with pytest.raises(JobFailed):
        dead.result(timeout=10)
    running = client.enqueue("hold", [GATE_TIMEOUT_S])
    wait_for(lambda: client.get(running).state == "active", timeout=10, what="the job running")

    with pytest.raises(BadRequest, match="is active: only an ended job can be deleted"):
        client.delete(running)
    assert client.delete(dead) is None
    with pytest.raises(UnknownJob):
        client.get(dead)
    with pytest.raises(UnknownJob):
        client.delete(dead)  # a second delete
    assert client.stats()["queues"]["default"]["discarded"] == 0
    again = client.enqueue("flaky", max_attempts=1, request_id="dead-1")  # a resend: no replay
    assert str(again) != str(dead)
    gate.set()
    assert running.result(timeout=10) is True

    worker.stop()  # before its coordinator: a goodbye nobody answers would hold its teardown
    coordinator.stop()  # a restart on the same file does not bring it back
    restarted = node(store=store)
    with Client(restarted.address, timeout=10.0) as after:
        with pytest.raises(UnknownJob):
            after.get(dead)
        assert after.get(running).state == "completed"


def test_corral_delete_forgets_an_ended_job_and_says_so(node, client_for, start_worker, capsys):
    coordinator = node()
    client = client_for(coordinator)
    start_worker(coordinator, {"flaky": flaky_until_third_attempt}, concurrency=1)
    job = client.enqueue("flaky", max_attempts=1)
    with pytest.raises(JobFailed):
        job.result(timeout=10)

    assert cli.main(["delete", str(job), "--connect", coordinator.address]) == 0
    assert capsys.readouterr().out.strip() == f"job {job} deleted"
    assert cli.main(["delete", str(job), "--connect", coordinator.address]) == 1
    assert capsys.readouterr().err.strip() == f"error: unknown_job: no job {job}"


# -- unique jobs ----------------------------------------------------------------------------------


def test_a_unique_key_returns_the_live_job_and_is_free_once_it_ended(
    node, client_for, start_worker, gates
):
    coordinator = node()
    client = client_for(coordinator)
    gate = gates()
    start_worker(coordinator, {"hold": lambda: gate.wait(GATE_TIMEOUT_S)}, concurrency=1)
    spec = {"type": "hold", "unique_key": "nightly-report"}

    first = client.enqueue("hold", unique_key="nightly-report")
    again = client.request("enqueue", job=spec)
    assert (again["job_id"], again["duplicate"]) == (first, True)
    assert client.enqueue("hold", unique_key="nightly-report") == first

    gate.set()
    assert first.result(timeout=10) is True
    fresh = client.request("enqueue", job=spec)
    assert fresh["job_id"] != first and fresh["duplicate"] is False


# -- cancellation ---------------------------------------------------------------------------------


def test_cancelling_an_active_job_is_seen_by_its_handler_and_the_worker_goes_on(
    node, client_for, start_worker, gates
):
    coordinator = node()
    client = client_for(coordinator)
    started = gates()
    seen: list[tuple[bool, bool]] = []

    def watch() -> str:
        job = current_job()
        assert job is not None
        started.set()
        finished = job.sleep(GATE_TIMEOUT_S)
        seen.append((finished, job.cancelled))
        return "ran to the end"

    start_worker(coordinator, {"watch": watch, "echo": lambda x: x}, concurrency=1)
    job = client.enqueue("watch")
    assert started.wait(10)
    assert client.cancel(job) == "cancelled"

    wait_for(lambda: seen, timeout=5, what="the handler saw the cancel")
    assert seen == [(False, True)]
    assert client.get(job).state == "cancelled"
    with pytest.raises(JobFailed, match="cancelled"):
        job.result(timeout=1)

    # The slot the cancelled job held is free again: the worker takes the next job.
    follower = client.enqueue("echo", ["next"])
    assert follower.result(timeout=5) == "next"
    assert client.get(job).state == "cancelled"


# -- results --------------------------------------------------------------------------------------


def test_a_result_over_the_size_limit_discards_the_job_with_a_clear_error(
    node, client_for, start_worker
):
    coordinator = node()
    client = client_for(coordinator)
    start_worker(coordinator, {"big": lambda: "x" * (600 * 1024), "small": lambda: "ok"})

    job = client.enqueue("big")
    with pytest.raises(JobFailed, match="ResultTooLarge"):
        job.result(timeout=10)
    failed = client.get(job)
    assert failed.state == "discarded" and failed.attempt == 1
    assert failed.errors[-1]["type"] == "ResultTooLarge"
    assert str(512 * 1024) in failed.errors[-1]["message"]
    assert client.enqueue("small").result(timeout=10) == "ok"  # results under it are stored


def test_a_result_over_the_coordinators_own_limit_ends_the_job_with_a_clear_error(
    node, client_for, start_worker
):
    """The coordinator's `max_result_size` can be below the worker's: its ack gets `too_large`,
    and the job must still end with an error saying so, not stay active until its lease ends."""
    coordinator = node(limits=Limits(max_result_size=16 * 1024))
    client = client_for(coordinator)
    start_worker(coordinator, {"big": lambda: "x" * (64 * 1024)}, concurrency=1)

    job = client.enqueue("big", max_attempts=1)
    with pytest.raises(JobFailed, match=r"(?i)too.?large") as failure:
        job.result(timeout=5)
    assert failure.value.job.state == "discarded"
    assert client.get(job).state == "discarded"


# -- label routing --------------------------------------------------------------------------------


def test_a_routed_job_waits_for_its_busy_most_specific_worker_while_a_plain_one_idles(
    node, client_for, start_worker, gates
):
    coordinator = node()
    client = client_for(coordinator)
    gate = gates()

    def handlers(name: str) -> dict[str, Callable[..., Any]]:
        return {"hold": lambda: gate.wait(GATE_TIMEOUT_S), "where": lambda: name}

    start_worker(coordinator, handlers("plain"), hostname="plain", concurrency=1)
    start_worker(
        coordinator, handlers("gpu"), hostname="gpu", concurrency=1, labels={"gpu": ["a100"]}
    )
    # A session appears in stats at hello; it is eligible only once registered (queues set).
    wait_for(
        lambda: [w["queues"] for w in client.stats()["workers"]] == [["default"]] * 2,
        timeout=5,
        what="both registered",
    )

    busy = client.enqueue("hold", route={"gpu": "a100"})
    wait_for(lambda: client.get(busy).state == "active", timeout=5, what="gpu busy")
    assert host_of(client, busy) == "gpu"
    routed = client.enqueue("where", route={"gpu": "a100"})
    plain = client.enqueue("where")  # newer than `routed`: plain takes it only if it must skip

    assert plain.result(timeout=10) == "plain"
    assert client.get(routed).state == "available"
    assert client.stats()["unroutable"] == {}
    gate.set()
    assert routed.result(timeout=10) == "gpu"


# -- batches --------------------------------------------------------------------------------------


def test_a_batch_with_one_invalid_spec_creates_no_job(node, client_for):
    coordinator = node()
    client = client_for(coordinator)
    with pytest.raises(BadRequest, match=r"jobs\[1\]"):
        client.enqueue_many([{"type": "a"}, {"type": "b", "max_attempts": 0}, {"type": "c"}])
    queues = client.stats()["queues"]
    assert all(sum(by_state.values()) == 0 for by_state in queues.values())
    handles = client.enqueue_many([{"type": "a"}, {"type": "c", "queue": "other"}])
    assert [client.get(h).state for h in handles] == ["available", "available"]


# -- the Python API -------------------------------------------------------------------------------


def test_a_handlers_defaults_apply_when_it_is_enqueued_by_function(node, client_for, start_worker):
    coordinator = node()
    client = client_for(coordinator)
    handlers: dict[str, Callable[..., Any]] = {}

    def register(worker: WorkerNode) -> None:
        @worker.handler("report", queue="reports", max_attempts=5, timeout=45)
        def report(day: str) -> str:
            return f"report for {day}"

        handlers["report"] = report

    start_worker(coordinator, register=register, concurrency=1)
    job = client.enqueue(handlers["report"], ["monday"])
    assert job.result(timeout=10) == "report for monday"
    raw = client.get(job).raw
    assert (raw["queue"], raw["max_attempts"], raw["timeout"]) == ("reports", 5, 45)
