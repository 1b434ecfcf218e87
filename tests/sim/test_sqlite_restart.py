"""Coordinator restarts in simulation, over a real SQLite file or a real PostgreSQL database (the
session's private cluster): the new coordinator knows only what the old one committed, and
finishes every job exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.base import Activity
from actors.store.postgres import PostgresStore
from actors.store.postgres_lease import PostgresLease
from actors.store.sqlite import SqliteStore

TERM = 1  # the lease term the fixture takes on a fresh database


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path: Path) -> str:
    """A SQLite file's path or a fresh PostgreSQL database's URL, its lease held at TERM."""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres").database()
        lease = PostgresLease(url)
        assert lease.try_acquire("tests", "tcp://tests", 3600.0) == TERM
        lease.close()
        return url
    return str(tmp_path / "corral.db")


def open_db(db: str, activity: Activity | None = None) -> SqliteStore:
    if db.startswith("postgresql://"):
        return PostgresStore(db, term=TERM, activity=activity)
    return SqliteStore(db, activity=activity)


def durable_cluster(make_cluster, db: str, workers: int, seed: int):
    store = open_db(db)
    cluster = make_cluster(workers, seed=seed, concurrency=1, store=store)
    # Starting only registered workers (no job saved yet): from here on the run-to-quiescence
    # also waits for commits and the replies they release.
    store.track(cluster.activity)
    return cluster


def restart_over_the_file(cluster, db: str) -> None:
    """Stop the coordinator, then start a new one over a fresh store of the same file or
    database."""
    cluster.kill_coordinator()  # closes the old store: its lock is released
    cluster.restart_coordinator(store=open_db(db, activity=cluster.activity))


def test_jobs_in_every_state_come_back_from_the_file_and_finish_exactly_once(
    make_cluster, history, db
):
    cluster = durable_cluster(make_cluster, db, workers=2, seed=21)
    client = cluster.client()
    done = client.enqueue("square", [7])
    cluster.run_until(lambda: client.get(done).state == "completed")
    running = client.enqueue_many([{"type": "sleep", "args": [60]} for _ in range(2)])
    cluster.run_until(lambda: all(client.get(job).state == "active" for job in running))
    waiting = client.enqueue_many([{"type": "square", "args": [n]} for n in range(5)])
    later = client.enqueue("square", [3], scheduled_at=cluster.clock.now() + 300)
    keyed = client.enqueue("square", [4], unique_key="report-1")
    old_ids = {w["worker_id"] for w in client.stats()["workers"]}

    restart_over_the_file(cluster, db)

    assert client.get(done).result == 49
    assert client.get(later).state == "scheduled"
    again = client.request("enqueue", job={"type": "square", "args": [4], "unique_key": "report-1"})
    assert again["duplicate"] is True and again["job_id"] == keyed
    everything = [done, *running, *waiting, later, keyed]
    cluster.run_until(
        lambda: all(client.get(job).state == "completed" for job in everything), within=900
    )
    for job in running:
        finished = client.get(job)
        assert finished.attempt == 1 and finished.errors == []  # resumed, not run again
        assert finished.raw["worker_id"] not in old_ids
    assert [client.get(job).result for job in waiting] == [n * n for n in range(5)]
    history.check(cluster, everything)
    assert sorted(job_id for _, job_id, _ in history.starts) == sorted(everything)


def test_active_jobs_whose_worker_never_returns_are_recovered_as_worker_lost_after_restart(
    make_cluster, history, db
):
    cluster = durable_cluster(make_cluster, db, workers=1, seed=22)
    client = cluster.client()
    job = client.enqueue("sleep", [60])
    cluster.run_until(lambda: client.get(job).state == "active")

    cluster.kill_worker(next(iter(cluster.workers)))
    restart_over_the_file(cluster, db)
    restarted = cluster.clock.now()
    cluster.add_worker()
    cluster.run_until(lambda: client.get(job).state == "completed", within=600)

    finished = client.get(job)
    assert [error["type"] for error in finished.errors] == ["worker_lost"]
    assert 30 <= finished.raw["started_at"] - restarted <= 32
    history.check(cluster, [job])


def test_two_restarts_in_a_row_lose_nothing_and_completed_jobs_stay_readable(
    make_cluster, history, db
):
    cluster = durable_cluster(make_cluster, db, workers=2, seed=23)
    client = cluster.client()
    first = client.enqueue_many([{"type": "square", "args": [n]} for n in range(20)])
    cluster.run_until(lambda: all(client.get(job).state == "completed" for job in first))
    restart_over_the_file(cluster, db)
    second = client.enqueue_many([{"type": "square", "args": [n]} for n in range(20, 40)])
    restart_over_the_file(cluster, db)

    everything = first + second
    cluster.run_until(
        lambda: all(client.get(job).state == "completed" for job in everything), within=600
    )
    assert [client.get(job).result for job in everything] == [n * n for n in range(40)]
    totals = client.stats()["queues"]["default"]
    assert totals["completed"] == 40 and totals["available"] == totals["active"] == 0
    history.check(cluster, everything)
