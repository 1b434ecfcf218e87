"""Recovery in simulation: no job is lost when workers die, stall, reconnect or are told to stop.

Every test runs on virtual time: a 30 s heartbeat timeout costs milliseconds.
"""

from __future__ import annotations

from actors.store.memory import MemoryStore


def _active_worker_of(client, job) -> str:
    workers = {w["worker_id"]: w["hostname"] for w in client.stats()["workers"]}
    return workers[client.get(job).raw["worker_id"]]


def test_a_worker_silent_for_the_timeout_has_its_jobs_returned_as_failed_attempts(
    make_cluster, history
):
    cluster = make_cluster(2, seed=1, concurrency=1)
    client = cluster.client()
    job = client.enqueue("sleep", [100])
    cluster.run_until(lambda: client.get(job).state == "active")
    silent = _active_worker_of(client, job)

    cluster.network.partition(silent)
    last_seen = next(w["last_seen"] for w in client.stats()["workers"] if w["hostname"] == silent)
    cluster.run_until(lambda: history.recoveries, within=60)

    silent_for = cluster.clock.now() - last_seen
    assert 30 < silent_for <= 30 + cluster.settings.reaper_interval
    cluster.run_until(lambda: client.get(job).state == "completed", within=300)
    finished = client.get(job)
    assert finished.attempt == 2
    assert finished.errors[0]["type"] == "worker_lost"
    assert _active_worker_of(client, job) != silent
    history.check(cluster, [job])


def test_a_killed_worker_running_jobs_complete_on_another_worker(make_cluster, history):
    cluster = make_cluster(3, seed=2, concurrency=2)
    client = cluster.client()
    jobs = client.enqueue_many([{"type": "sleep", "args": [50]} for _ in range(6)])
    cluster.run_until(lambda: all(client.get(job).state == "active" for job in jobs))

    victim = _active_worker_of(client, jobs[0])
    cluster.kill_worker(victim)
    cluster.run_until(lambda: all(client.get(job).state == "completed" for job in jobs), within=600)

    lost = [job for job in jobs if client.get(job).errors]
    assert len(lost) == 2
    assert all(client.get(job).errors[0]["type"] == "worker_lost" for job in lost)
    history.check(cluster, jobs)


def test_a_job_that_fails_on_every_lost_worker_is_discarded_when_attempts_run_out(
    make_cluster, history
):
    cluster = make_cluster(1, seed=3, concurrency=1)
    client = cluster.client()
    job = client.enqueue("sleep", [1000], max_attempts=2)
    for attempt in (1, 2):
        cluster.run_until(lambda: client.get(job).attempt == attempt, within=120)  # noqa: B023
        assert client.get(job).state == "active"
        cluster.kill_worker(next(iter(cluster.workers)))
        cluster.add_worker()
    cluster.run_until(lambda: client.get(job).state == "discarded", within=300)
    assert [e["type"] for e in client.get(job).errors] == ["worker_lost", "worker_lost"]
    history.check(cluster, [job])


def test_a_reservation_not_beaten_within_its_visibility_timeout_returns_with_error_timeout(
    make_cluster, history, raw_worker
):
    cluster = make_cluster(0, seed=4)
    client = cluster.client()
    job = client.enqueue("square", [3], timeout=40)
    raw = raw_worker(cluster)
    worker_id = raw.request("hello", v=1, role="worker", hostname="raw", pid=1)["worker_id"]
    raw.request("register", worker_id=worker_id, queues=["default"], hostname="raw", pid=1)
    fetched = raw.request("fetch", worker_id=worker_id, count=1)["jobs"]
    assert [j["id"] for j in fetched] == [job]

    # Beats keep the session alive but do not list the job: its lease is not extended.
    started = cluster.clock.now()
    while client.get(job).state == "active":
        beat = raw.request("beat", worker_id=worker_id, state="running", active_job_ids=[])
        assert beat["type"] == "reply"
        cluster.advance(5)
    assert 40 <= cluster.clock.now() - started <= 47
    assert client.get(job).errors[0]["type"] == "timeout"
    late = raw.request("ack", worker_id=worker_id, job_id=job, attempt=1, result=9)
    assert late["code"] == "not_owner"
    assert raw.request("beat", worker_id=worker_id, state="running", active_job_ids=[job])[
        "cancel_job_ids"
    ] == [job]


def test_beats_listing_a_job_extend_its_reservation_past_the_visibility_timeout(
    make_cluster, history
):
    cluster = make_cluster(1, seed=5, concurrency=1)
    client = cluster.client()
    job = client.enqueue("sleep", [300], timeout=60)
    cluster.run_until(lambda: client.get(job).state == "completed", within=600)
    finished = client.get(job)
    assert finished.attempt == 1 and finished.errors == []
    history.check(cluster, [job])


def test_after_a_coordinator_restart_workers_reconnect_with_new_ids_and_resume_running_jobs(
    make_cluster, history
):
    store = MemoryStore()  # shared across the restart: stands in for a durable store
    cluster = make_cluster(2, seed=6, concurrency=1, store=store)
    client = cluster.client()
    jobs = client.enqueue_many([{"type": "sleep", "args": [60]} for _ in range(2)])
    cluster.run_until(lambda: all(client.get(job).state == "active" for job in jobs))
    old_ids = {w["worker_id"] for w in client.stats()["workers"]}

    cluster.restart_coordinator()
    cluster.run_until(lambda: all(client.get(job).state == "completed" for job in jobs), within=600)

    for job in jobs:
        finished = client.get(job)
        assert finished.attempt == 1 and finished.errors == []  # resumed, not run again
        assert finished.raw["worker_id"] not in old_ids
    new_ids = {w["worker_id"] for w in client.stats()["workers"] if w["state"] != "terminated"}
    assert len(new_ids) == 2 and not new_ids & old_ids
    history.check(cluster, jobs)
    assert len(history.starts) == 2


def test_jobs_not_resumed_after_a_coordinator_restart_are_recovered_as_worker_lost(
    make_cluster, history
):
    store = MemoryStore()
    cluster = make_cluster(1, seed=7, concurrency=1, store=store)
    client = cluster.client()
    job = client.enqueue("sleep", [60])
    cluster.run_until(lambda: client.get(job).state == "active")

    cluster.kill_worker(next(iter(cluster.workers)))
    cluster.restart_coordinator()
    restarted = cluster.clock.now()
    cluster.add_worker()
    cluster.run_until(lambda: client.get(job).state == "completed", within=600)

    finished = client.get(job)
    assert finished.errors[0]["type"] == "worker_lost"
    recovered_at = finished.raw["started_at"]
    assert 30 <= recovered_at - restarted <= 32
    history.check(cluster, [job])


def test_a_quiet_worker_fetches_nothing_until_directed_to_run_again(make_cluster, history):
    cluster = make_cluster(1, seed=8, concurrency=1)
    client = cluster.client()
    worker_id = client.stats()["workers"][0]["worker_id"]
    client.direct(worker_id, "quiet")
    cluster.advance(6)  # one beat carries the directive
    job = client.enqueue("square", [4])
    cluster.advance(60)
    assert client.get(job).state == "available"
    assert client.stats()["workers"][0]["state"] == "quiet"

    client.direct(worker_id, "running")
    cluster.run_until(lambda: client.get(job).state == "completed", within=60)
    assert client.get(job).result == 16


def test_terminate_is_sticky_and_the_worker_stops_fetching(make_cluster):
    cluster = make_cluster(1, seed=9, concurrency=1)
    client = cluster.client()
    worker_id = client.stats()["workers"][0]["worker_id"]
    client.direct(worker_id, "terminate")
    cluster.advance(6)
    client.direct(worker_id, "running")
    cluster.advance(6)
    job = client.enqueue("square", [4])
    cluster.advance(60)
    assert client.get(job).state == "available"
    assert client.stats()["workers"][0]["state"] == "terminate"


def test_a_gracefully_stopped_worker_finishes_its_running_job_and_deregisters(
    make_cluster, history
):
    cluster = make_cluster(1, seed=10, concurrency=1)
    client = cluster.client()
    job = client.enqueue("sleep", [10])
    cluster.run_until(lambda: client.get(job).state == "active")

    cluster.stop_worker(next(iter(cluster.workers)))

    assert client.get(job).state == "completed" and client.get(job).errors == []
    assert [w["state"] for w in client.stats()["workers"]] == ["terminated"]
    history.check(cluster, [job])


def test_a_job_outliving_the_shutdown_grace_is_failed_as_retryable_and_runs_elsewhere(
    make_cluster, history
):
    cluster = make_cluster(1, seed=11, concurrency=1)
    client = cluster.client()
    job = client.enqueue("sleep", [100])
    cluster.run_until(lambda: client.get(job).state == "active")

    cluster.stop_worker(next(iter(cluster.workers)), timeout=5)
    assert client.get(job).state in ("retryable", "available")  # back in the queue, not lost
    cluster.add_worker()
    cluster.run_until(lambda: client.get(job).state == "completed", within=600)
    assert client.get(job).errors[0]["type"] == "Shutdown"
    history.check(cluster, [job])
