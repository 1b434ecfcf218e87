"""Paused queues in simulation: while a queue is paused its jobs wait (enqueues still land),
no worker starts one however long it waits, and resuming serves them; the pause outlives a
coordinator restart over SQLite and a failover to a standby."""

from __future__ import annotations

from pathlib import Path

from actors.store.sqlite import SqliteStore


def started(cluster, job_ids) -> list[str]:
    return [j for j in job_ids if cluster.store.get(j)["state"] != "available"]


def test_a_paused_queue_starts_nothing_until_resumed(make_cluster, history):
    cluster = make_cluster(2, seed=3, concurrency=2)
    client = cluster.client()
    assert client.pause_queue("default") is True
    specs = [{"type": "square", "args": [n]} for n in range(6)]
    jobs = [str(j) for j in client.enqueue_many(specs)]
    cluster.advance(120)
    assert started(cluster, jobs) == []
    assert client.stats()["paused"] == ["default"]
    assert client.resume_queue("default") is False
    cluster.run_until(lambda: all(client.get(j).state == "completed" for j in jobs))
    assert client.stats()["paused"] == []
    history.check(cluster, jobs)


def test_a_pause_outlives_a_restart_over_sqlite(make_cluster, history, tmp_path: Path):
    path = str(tmp_path / "corral.db")
    store = SqliteStore(path)
    cluster = make_cluster(1, seed=5, concurrency=1, store=store)
    store.track(cluster.activity)
    client = cluster.client()
    client.pause_queue("default")
    job = str(client.enqueue("square", [4]))
    cluster.kill_coordinator()
    cluster.restart_coordinator(store=SqliteStore(path, activity=cluster.activity))
    cluster.advance(60)
    assert client.get(job).state == "available" and client.stats()["paused"] == ["default"]
    client.resume_queue("default")
    cluster.run_until(lambda: client.get(job).state == "completed")
    history.check(cluster, [job])


def test_a_pause_outlives_a_failover(make_cluster):
    cluster = make_cluster(1, seed=8, concurrency=1, coordinators=2, failover_timeout=3.0)
    client = cluster.client()
    first = cluster.leader()
    client.pause_queue("default")
    job = str(client.enqueue("square", [5]))
    cluster.kill_coordinator(first.bind)
    cluster.run_until(lambda: cluster.leader() not in (None, first), within=60)
    cluster.advance(30)
    assert client.get(job).state == "available" and client.stats()["paused"] == ["default"]
    client.resume_queue("default")
    cluster.run_until(lambda: client.get(job).state == "completed")
