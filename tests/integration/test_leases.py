"""A job's lease while its handler runs long: a handler hogging the GIL, a job outliving its
visibility timeout, a peer that stops listing its job, a worker busy from its first beat, and a
handler deaf to cancellation.

Worker and coordinator processes are started from tests/integration/node_script.py with short
timings (tests/integration/real_cluster.py); every wait is a condition with a deadline and
every process is killed at teardown (the `spawn` fixture). docs/FAILURES.md cites these tests.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.integration.real_cluster import (
    FAST,
    HEARTBEAT_INTERVAL_S,
    HEARTBEAT_TIMEOUT_S,
    RECOVERY_MARGIN_S,
    all_in,
    hold_jobs,
    registered,
    session_of,
    start_worker,
    workers_of,
)

# -- a handler that hogs the GIL ---------------------------------------------------------------


def test_a_cpu_bound_handler_does_not_starve_the_beats_and_completes_on_its_first_attempt(
    coordinator, spawn, clients
):
    # Given a 1 s heartbeat timeout and a worker process running two pure-Python busy loops
    node = coordinator(heartbeat_interval=0.2, heartbeat_timeout=1.0, reaper_interval=0.05)
    client = clients(node.address)
    worker = start_worker(spawn, node.address, "spinner", concurrency=2)
    worker_id = registered(client, worker)
    jobs = client.enqueue_many([{"type": "spin", "args": [3.0]} for _ in range(2)])

    # When they spin for 3 s (three heartbeat timeouts) without sleeping or doing I/O
    wait_for(lambda: all_in(client, jobs, "completed"), timeout=20, what="both spins done")

    # Then neither was recovered: the session that fetched them is the one that acked them
    for job in jobs:
        done = client.get(job)
        assert (done.attempt, done.errors, done.raw["worker_id"]) == (1, [], worker_id)
        assert done.result["pid"] == worker.pid and done.result["rounds"] > 0
        assert done.raw["completed_at"] - done.raw["started_at"] >= 3.0
    sessions = workers_of(client, worker.pid)
    assert [(w["worker_id"], w["state"]) for w in sessions] == [(worker_id, "running")]


# -- visibility timeout ------------------------------------------------------------------------


def test_a_job_outliving_its_visibility_timeout_is_not_recovered_while_its_worker_beats(
    coordinator, spawn, clients
):
    node = coordinator(**FAST)
    client = clients(node.address)
    worker = start_worker(spawn, node.address, "worker", concurrency=1)
    worker_id = registered(client, worker)

    # A 3 s handler under a 1 s visibility timeout: each beat listing it pushes the deadline on
    job = client.enqueue("sleep", [3.0], timeout=1)
    done = client.get(job, wait=15)

    assert (done.state, done.attempt, done.errors) == ("completed", 1, [])
    assert done.raw["worker_id"] == worker_id
    assert done.raw["completed_at"] - done.raw["started_at"] >= 3.0


def test_a_raw_peer_that_beats_without_listing_its_job_loses_it_as_a_timeout_attempt(
    coordinator, raw_peer, clients
):
    # Given a worker written with nothing but zmq + msgpack that fetched a job with timeout=1
    node = coordinator(**FAST)
    client = clients(node.address)
    peer = raw_peer(node.address)
    hello = peer.request("hello", v=1, role="worker", hostname="raw", pid=os.getpid())
    worker_id = hello["worker_id"]
    assert (hello["heartbeat_interval"], hello["heartbeat_timeout"]) == (
        HEARTBEAT_INTERVAL_S,
        HEARTBEAT_TIMEOUT_S,
    )
    register = peer.request(
        "register", worker_id=worker_id, queues=["raw"], hostname="raw", pid=os.getpid()
    )
    assert register["type"] == "reply", register
    job = client.enqueue("square", [3], queue="raw", timeout=1)
    fetched_at = time.time()
    fetched = peer.request("fetch", worker_id=worker_id, count=1)["jobs"]
    assert [(j["id"], j["attempt"]) for j in fetched] == [(job, 1)]

    # When it keeps beating (so its session lives) but never lists the job
    def beat_and_check() -> bool:
        beat = peer.request("beat", worker_id=worker_id, state="running", active_job_ids=[])
        assert beat["type"] == "reply", beat
        return client.get(job).state != "active"

    wait_for(beat_and_check, timeout=5, interval=HEARTBEAT_INTERVAL_S, what="job recovered")

    # Then the reservation expired about 1 s after the fetch: a failed attempt of type timeout
    recovered = client.get(job)
    assert recovered.state == "available"
    assert [(e["type"], e["attempt"]) for e in recovered.errors] == [("timeout", 1)]
    delay = recovered.errors[0]["at"] - fetched_at
    assert 1.0 - 0.05 <= delay <= 1.0 + RECOVERY_MARGIN_S, f"expired {delay:.3f} s after fetch"
    print(f"reservation expired {delay:.3f} s after the fetch")
    session = next(w for w in client.stats()["workers"] if w["worker_id"] == worker_id)
    assert session["state"] == "running"  # the worker itself is fine; only the lease ended

    # And its late ack changes nothing; a beat listing the job is told to abandon it
    late = peer.request("ack", worker_id=worker_id, job_id=job, attempt=1, result=9)
    assert (late["type"], late.get("code")) == ("error", "not_owner"), late
    beat = peer.request("beat", worker_id=worker_id, state="running", active_job_ids=[job])
    assert beat["cancel_job_ids"] == [job]

    # And the next attempt is a fresh reservation that can complete it
    again = peer.request("fetch", worker_id=worker_id, count=1)["jobs"]
    assert [(j["id"], j["attempt"]) for j in again] == [(job, 2)]
    assert peer.request("ack", worker_id=worker_id, job_id=job, attempt=2, result=9)["type"] == (
        "reply"
    )
    done = client.get(job)
    assert (done.state, done.attempt, done.result) == ("completed", 2, 9)


# -- a worker adopts the coordinator's timing at once -------------------------------------------


def test_a_just_started_busy_worker_beats_at_the_interval_the_coordinator_announced(
    coordinator, spawn, clients
):
    # Given a worker process that registered and at once filled its only slot
    node = coordinator(**FAST)
    client = clients(node.address)
    worker = start_worker(spawn, node.address, "worker", concurrency=1)
    worker_id = registered(client, worker)
    job = client.enqueue("sleep", [30])
    wait_for(lambda: client.get(job).state == "active", timeout=10, what="the job active")
    watch_until = time.time() + 2 * HEARTBEAT_TIMEOUT_S

    # Then for two heartbeat timeouts it is heard from every beat (it sends no fetch: no free
    # slot), so its session and its job's first attempt survive
    def still_alive_and_watched_long_enough() -> bool:
        session = next(w for w in client.stats()["workers"] if w["worker_id"] == worker_id)
        assert session["state"] == "running", f"declared {session['state']}: {session}"
        silent = time.time() - session["last_seen"]
        assert silent < HEARTBEAT_TIMEOUT_S / 2, f"nothing heard for {silent:.2f} s"
        assert client.get(job).attempt == 1
        return time.time() >= watch_until

    wait_for(still_alive_and_watched_long_enough, timeout=2 * HEARTBEAT_TIMEOUT_S + 5)


# -- a handler that ignores cancellation --------------------------------------------------------

WORKERS = ("stuck", "free")  # each serves `default` and a queue named like it


def test_a_worker_whose_cancelled_handler_will_not_stop_takes_no_job_it_cannot_start(
    coordinator, spawn, clients, tmp_path
):
    # Given two one-slot workers; the first runs a handler deaf to cancellation
    node = coordinator(**FAST)
    client = clients(node.address)
    release = tmp_path / "release"
    stuck, free = (start_worker(spawn, node.address, name, concurrency=1) for name in WORKERS)
    stuck_id = registered(client, stuck)
    registered(client, free)
    [job] = hold_jobs(client, tmp_path, release, queue="stuck", kind="stubborn")

    # When the job is cancelled (the worker is told on its next beat and abandons it, but the
    # handler keeps its thread)
    cancelled_at = time.time()
    assert client.cancel(job) == "cancelled"
    wait_for(
        lambda: session_of(client, stuck_id)["last_seen"] > cancelled_at + 2 * HEARTBEAT_INTERVAL_S,
        timeout=5,
        what="beats (carrying the cancel) from the first worker",
    )

    # Then new jobs still run promptly: the first worker has no thread to run them with, so
    # they must not wait on it while the second worker is free
    more = client.enqueue_many([{"type": "sleep", "args": [0.2]} for _ in range(4)])
    seen: list[Any] = []

    def all_completed() -> bool:
        seen[:] = [(client.get(j).state, client.get(j).raw.get("worker_id")) for j in more]
        return all(state == "completed" for state, _ in seen)

    try:
        wait_for(all_completed, timeout=5)
    except pytest.fail.Exception:
        pytest.fail(f"jobs (state, worker) 5 s later: {seen}; the stuck worker is {stuck_id}")
    assert {client.get(j).result for j in more} == {free.pid}
    release.touch()
