"""A process frozen by SIGSTOP (a VM pause, swapping, a stuck disk): a worker, declared dead
and abandoning its job once thawed; the coordinator, whose workers resume their jobs.

Worker and coordinator processes are started from tests/integration/node_script.py with short
timings (tests/integration/real_cluster.py); every wait is a condition with a deadline and
every process is killed at teardown (the `spawn` fixture). docs/FAILURES.md cites these tests.
"""

from __future__ import annotations

import signal

from tests.conftest import wait_for
from tests.integration.real_cluster import (
    FAST,
    HEARTBEAT_TIMEOUT_S,
    RECOVERY_MARGIN_S,
    hold_jobs,
    registered,
    resumed_under_a_new_id,
    runs_jobs_again,
    start_coordinator,
    start_worker,
)

# -- a worker process stalls --------------------------------------------------------------------


def test_a_stalled_worker_is_declared_dead_and_abandons_its_job_when_it_wakes(
    coordinator, spawn, clients, tmp_path
):
    # Given a worker running a job and an idle second worker
    node = coordinator(**FAST)
    client = clients(node.address)
    release = tmp_path / "release"
    stalled = start_worker(spawn, node.address, "stalled", concurrency=1)
    stalled_id = registered(client, stalled)
    [job] = hold_jobs(client, tmp_path, release)
    other = start_worker(spawn, node.address, "other", concurrency=1)
    other_id = registered(client, other)

    # When the first process is frozen (SIGSTOP: no thread runs, no beat leaves)
    stopped_at = stalled.signal(signal.SIGSTOP)

    # Then it is declared dead after the heartbeat timeout and its job runs on the other one
    wait_for(lambda: client.get(job).attempt == 2, timeout=HEARTBEAT_TIMEOUT_S + 5)
    moved = client.get(job)
    assert [(e["type"], e["attempt"]) for e in moved.errors] == [("worker_lost", 1)]
    assert moved.errors[0]["at"] - stopped_at <= HEARTBEAT_TIMEOUT_S + RECOVERY_MARGIN_S
    print(f"recovered {moved.errors[0]['at'] - stopped_at:.3f} s after SIGSTOP")
    assert moved.raw["worker_id"] == other_id

    # When it is thawed (SIGCONT), it notices the silence, re-registers under a new id and
    # abandons the job it was running (its previous session is gone, nothing is resumed): its
    # only slot is free again although the job it held was never released
    stalled.signal(signal.SIGCONT)
    assert runs_jobs_again(client, stalled) != stalled_id
    release.touch()
    done = client.get(job, wait=10)
    assert (done.state, done.attempt, done.raw["worker_id"], done.result) == (
        "completed",
        2,
        other_id,
        other.pid,
    )
    assert client.stats()["queues"]["default"]["completed"] == 1


# -- the coordinator process stalls --------------------------------------------------------------


def test_a_coordinator_frozen_past_the_heartbeat_timeout_lets_running_jobs_resume(
    spawn, clients, tmp_path
):
    # Given a coordinator process and a worker running a job
    coordinator, address = start_coordinator(spawn, tmp_path, "coordinator")
    client = clients(address)
    worker = start_worker(spawn, address, "worker", concurrency=1)
    worker_id = registered(client, worker)
    release = tmp_path / "release"
    [job] = hold_jobs(client, tmp_path, release)

    # When the coordinator is frozen (SIGSTOP: a VM pause, swapping, a stuck disk) until the
    # worker has given up on it and started reconnecting, then thawed
    coordinator.signal(signal.SIGSTOP)
    wait_for(
        lambda: "coordinator lost (no reply" in worker.output,
        timeout=HEARTBEAT_TIMEOUT_S + 5,
        what="the worker noticing the coordinator is silent",
    )
    coordinator.signal(signal.SIGCONT)

    # Then the worker's job is resumed under its new session, not recovered and run again:
    # the worker was never dead, only unheard while the coordinator itself was frozen
    resumed_under_a_new_id(client, worker, job, worker_id)
    release.touch()
    done = client.get(job, wait=10)
    assert (done.state, done.attempt, done.errors) == ("completed", 1, [])
