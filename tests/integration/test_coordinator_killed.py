"""A coordinator process SIGKILLed and started again on the same address: on the memory store
(everything it held is gone, workers re-register, a client retries safely with a unique key)
and on SQLite and PostgreSQL (acknowledged jobs survive, running ones resume, orphans are
recovered).

Worker and coordinator processes are started from tests/integration/node_script.py with short
timings (tests/integration/real_cluster.py); every wait is a condition with a deadline and
every process is killed at teardown (the `spawn` fixture). docs/FAILURES.md cites these tests.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from nodes.client import Client
from tests.conftest import wait_for
from tests.integration.real_cluster import (
    HEARTBEAT_TIMEOUT_S,
    RECOVERY_MARGIN_S,
    all_in,
    hold_jobs,
    registered,
    resumed_under_a_new_id,
    runs_jobs_again,
    start_coordinator,
    start_worker,
)
from transport.errors import ConnectionLost, NotLeader, UnknownJob

# -- the memory store ----------------------------------------------------------------------------


def test_after_a_coordinator_is_killed_and_restarted_workers_re_register_with_new_ids(
    spawn, clients, tmp_path
):
    # Given a coordinator process on the memory store and two worker processes (one slot
    # each): one idle, one running a job; and a job waiting in a queue nobody serves
    first, address = start_coordinator(spawn, tmp_path, "coordinator-1")
    before = clients(address)
    release = tmp_path / "release"
    busy, idle = (start_worker(spawn, address, name, concurrency=1) for name in ("busy", "idle"))
    old_ids = {registered(before, busy), registered(before, idle)}
    [running] = hold_jobs(before, tmp_path, release, queue="busy")
    waiting = before.enqueue("sleep", [0], queue="nobody-serves-this")

    # When the coordinator is SIGKILLed and a new one binds the same address
    first.signal(signal.SIGKILL)
    first.wait()
    _, again = start_coordinator(spawn, tmp_path, "coordinator-2", bind=address)
    restarted_at = time.time()
    assert again == address
    after = clients(address)

    # Then each worker process re-registers by itself, under a new worker_id, and runs jobs
    # again; the busy one has abandoned its running job (its only slot is free, the job's
    # hold was never released)
    fresh = {runs_jobs_again(after, worker) for worker in (busy, idle)}
    took = time.time() - restarted_at
    assert len(fresh) == 2 and not fresh & old_ids, (fresh, old_ids)
    assert busy.alive and idle.alive

    # And the memory store lost everything the old coordinator held: both jobs are unknown
    for job in (running, waiting):
        with pytest.raises(UnknownJob):
            after.get(job)

    # And newly enqueued jobs run on the re-registered processes on their first attempt
    jobs = after.enqueue_many([{"type": "sleep", "args": [0.05]} for _ in range(6)])
    wait_for(lambda: all_in(after, jobs, "completed"), timeout=10, what="new jobs completed")
    for job in jobs:
        done = after.get(job)
        assert (done.attempt, done.errors) == (1, [])
        assert done.raw["worker_id"] in fresh and done.result in {busy.pid, idle.pid}
    print(f"both workers ran jobs again {took:.2f} s after the new coordinator started")


def test_an_enqueue_that_timed_out_in_a_coordinator_outage_is_safe_to_retry_with_a_unique_key(
    spawn, clients, tmp_path
):
    # Given a client whose coordinator process has just been SIGKILLed
    first, address = start_coordinator(spawn, tmp_path, "coordinator-1")
    client = clients(address, timeout=1.0)
    client.ping()
    first.signal(signal.SIGKILL)
    first.wait()

    # When an enqueue gets no reply (the request may still be queued in the client's socket)
    with pytest.raises(ConnectionLost):
        client.enqueue("sleep", [0], queue="orders", unique_key="order-17")

    # And the client retries it with the same unique_key once a new coordinator is up
    start_coordinator(spawn, tmp_path, "coordinator-2", bind=address)
    job = wait_for(
        lambda: _enqueue_or_none(client, "sleep", [0], queue="orders", unique_key="order-17"),
        timeout=10,
        what="an enqueue answered by the new coordinator",
    )

    # Then there is exactly one such job, whether or not the first request arrived late
    counts = client.stats()["queues"]["orders"]
    assert sum(counts.values()) == 1, counts
    assert client.get(job).raw["unique_key"] == "order-17"


def _enqueue_or_none(client: Client, kind: str, args: list[Any], **options: Any) -> str | None:
    try:
        return str(client.enqueue(kind, args, **options))
    except ConnectionLost:
        return None


# -- the durable stores: SQLite and PostgreSQL ----------------------------------------------------


# On PostgreSQL the new coordinator serves once the dead one's lease has lapsed (docs/HA.md): a
# short failover_timeout keeps that inside the time the worker takes to come back.
LEASE_S = {"failover_timeout": 0.5}
WORKERS = ("keeper", "goner")  # each serves `default` and a queue named like it


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_after_a_durable_coordinator_is_killed_acked_jobs_survive_and_running_ones_resume(
    spawn, clients, tmp_path, request, kind
):
    # Given a coordinator on SQLite (a file) or PostgreSQL (a database of the session's private
    # cluster), a completed job, a waiting job, and two workers each running a job
    if kind == "sqlite":
        store, lease = f"sqlite:///{tmp_path / 'corral.db'}", {}
    else:
        store, lease = request.getfixturevalue("postgres").database(), LEASE_S
    first, address = start_coordinator(spawn, tmp_path, "coordinator-1", store=store, **lease)
    before = clients(address)
    release = tmp_path / "release"
    keeper, goner = (start_worker(spawn, address, name, concurrency=1) for name in WORKERS)
    keeper_id, goner_id = registered(before, keeper), registered(before, goner)
    acked = before.enqueue("sleep", [0], queue="keeper")
    assert acked.result(timeout=10) == keeper.pid
    waiting = before.enqueue("sleep", [0], queue="nobody-serves-this")
    [resumed] = hold_jobs(before, tmp_path, release, queue="keeper")
    [orphan] = hold_jobs(before, tmp_path, release)  # the keeper's only slot is taken
    assert (before.get(resumed).raw["worker_id"], before.get(orphan).raw["worker_id"]) == (
        keeper_id,
        goner_id,
    )

    # When one worker and then the coordinator are SIGKILLed, and a new coordinator opens the
    # same file or database on the same address
    goner.signal(signal.SIGKILL)
    first.signal(signal.SIGKILL)
    first.wait()
    goner.wait()
    _, again = start_coordinator(
        spawn, tmp_path, "coordinator-2", bind=address, store=store, **lease
    )
    after = clients(again)
    wait_for(lambda: serves(after), timeout=10, what="the new coordinator serving")
    restarted_at = time.time()

    # Then acknowledged and waiting jobs survived as they were
    kept = after.get(acked)
    assert (kept.state, kept.attempt, kept.result) == ("completed", 1, keeper.pid)
    assert (after.get(waiting).state, after.get(waiting).attempt) == ("available", 0)

    # And the surviving worker re-registers and resumes its running job under its new id
    resumed_under_a_new_id(after, keeper, resumed, keeper_id)
    assert after.get(resumed).state == "active"

    # And the dead worker's job is recovered as worker_lost once heartbeat_timeout has passed
    wait_for(
        lambda: after.get(orphan).state == "available",
        timeout=HEARTBEAT_TIMEOUT_S + 5,
        what="the orphaned job recovered",
    )
    errors = after.get(orphan).errors
    assert [(e["type"], e["attempt"]) for e in errors] == [("worker_lost", 1)]
    delay = errors[0]["at"] - restarted_at
    assert HEARTBEAT_TIMEOUT_S - 0.3 <= delay <= HEARTBEAT_TIMEOUT_S + RECOVERY_MARGIN_S, delay
    print(f"orphan recovered {delay:.3f} s after the restart")

    # And both complete exactly once: the resumed one on its first attempt
    release.touch()
    wait_for(
        lambda: all_in(after, [resumed, orphan], "completed"), timeout=10, what="both completed"
    )
    assert (after.get(resumed).attempt, after.get(resumed).errors) == (1, [])
    assert (after.get(orphan).attempt, after.get(orphan).result) == (2, keeper.pid)


def test_after_a_coordinator_on_sqlite_stays_down_past_the_heartbeat_timeout_jobs_still_resume(
    spawn, clients, tmp_path
):
    # Given a coordinator on SQLite and a worker running a job
    store = f"sqlite:///{tmp_path / 'corral.db'}"
    first, address = start_coordinator(spawn, tmp_path, "coordinator-1", store=store)
    before = clients(address)
    worker = start_worker(spawn, address, "worker", concurrency=1)
    worker_id = registered(before, worker)
    release = tmp_path / "release"
    [job] = hold_jobs(before, tmp_path, release)

    # When the coordinator is SIGKILLed and stays down until the worker has given up on it
    # (no reply for heartbeat_timeout) and started reconnecting, then comes back
    first.signal(signal.SIGKILL)
    first.wait()
    wait_for(
        lambda: "coordinator lost (no reply" in worker.output,
        timeout=HEARTBEAT_TIMEOUT_S + 5,
        what="the worker noticing the coordinator is gone",
    )
    _, again = start_coordinator(spawn, tmp_path, "coordinator-2", bind=address, store=store)
    after = clients(again)

    # Then the worker resumes its running job within the restart's resume window
    resumed_under_a_new_id(after, worker, job, worker_id, timeout=HEARTBEAT_TIMEOUT_S + 5)
    release.touch()
    done = after.get(job, wait=10)
    assert (done.state, done.attempt, done.errors) == ("completed", 1, [])


def serves(client: Client) -> bool:
    """The coordinator answers `stats` (on PostgreSQL: it has taken the lease)."""
    try:
        client.stats()
    except NotLeader:
        return False
    return True
