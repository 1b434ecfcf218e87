"""SIGTERM to a worker process: a graceful stop that lets a running job finish, or fails a
stuck one as a retryable `Shutdown` attempt after the grace, then deregisters and exits 0.

Worker and coordinator processes are started from tests/integration/node_script.py with short
timings (tests/integration/real_cluster.py); every wait is a condition with a deadline and
every process is killed at teardown (the `spawn` fixture). docs/FAILURES.md cites these tests.
"""

from __future__ import annotations

import signal

from tests.conftest import wait_for
from tests.integration.real_cluster import (
    FAST,
    hold_jobs,
    registered,
    session_of,
    start_worker,
    workers_of,
)


def test_a_sigtermed_worker_finishes_its_running_job_deregisters_and_exits_0(
    coordinator, spawn, clients
):
    # Given a worker process (concurrency 1) running a job that takes about 1 s
    node = coordinator(**FAST)
    client = clients(node.address)
    worker = start_worker(spawn, node.address, "worker", concurrency=1)
    worker_id = registered(client, worker)
    job = client.enqueue("sleep", [1.0])
    wait_for(lambda: client.get(job).state == "active", timeout=10, what="the job active")

    # When it gets SIGTERM (its handler runs WorkerNode.stop()), with another job waiting
    signalled_at = worker.signal(signal.SIGTERM)
    waiting = client.enqueue("sleep", [0])

    # Then the process exits 0 after the running job completed on its first attempt
    assert worker.wait() == 0, worker.output
    done = client.get(job)
    assert (done.state, done.attempt, done.errors, done.result) == (
        "completed",
        1,
        [],
        worker.pid,
    )
    assert done.raw["started_at"] < signalled_at < done.raw["completed_at"]
    # And it took nothing new once told to stop, and its session ended as terminated
    assert (client.get(waiting).state, client.get(waiting).attempt) == ("available", 0)
    sessions = workers_of(client, worker.pid)
    assert [(w["worker_id"], w["state"]) for w in sessions] == [(worker_id, "terminated")]


def test_a_sigtermed_worker_whose_handler_is_stuck_fails_the_job_as_shutdown_and_exits(
    coordinator, spawn, clients, tmp_path
):
    # Given a worker with a 1 s shutdown grace whose only job is stuck in a blocking call
    node = coordinator(**FAST)
    client = clients(node.address)
    grace = 1.0
    worker = start_worker(spawn, node.address, "worker", concurrency=1, shutdown_grace=grace)
    worker_id = registered(client, worker)
    [job] = hold_jobs(client, tmp_path, tmp_path / "never-released", kind="stubborn")

    # When it gets SIGTERM
    signalled_at = worker.signal(signal.SIGTERM)

    # Then after the grace the job is failed as a retryable Shutdown attempt, the session ends
    # by deregistering, and the process exits 0 (it does not wait on the stuck thread)
    wait_for(lambda: client.get(job).errors, timeout=grace + 5, what="the job failed")
    failed = client.get(job)
    assert failed.state in ("retryable", "available"), failed
    assert [(e["type"], e["attempt"]) for e in failed.errors] == [("Shutdown", 1)]
    assert failed.errors[0]["at"] - signalled_at >= grace
    wait_for(
        lambda: session_of(client, worker_id)["state"] == "terminated",
        timeout=5,
        what="the session ended",
    )
    assert worker.wait(timeout=grace + 5) == 0, worker.output
