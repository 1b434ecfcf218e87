"""Enqueue request ids in the simulation: the in-process network delivers every frame twice
(its `duplicate` fault), and an enqueue that carries a request id still makes one job each."""

from __future__ import annotations

from transport.inproc import Faults


def test_enqueues_the_network_duplicates_make_one_job_each_when_they_carry_a_request_id(
    make_cluster, history
):
    # Given a cluster whose network delivers every frame twice, both ways (no worker yet: a
    # parked fetch answered twice, each answer fetching again, would double without end)
    cluster = make_cluster(0, seed=3)
    client = cluster.client()
    cluster.network.faults = Faults(duplicate=1.0)

    # When a client enqueues single jobs and a batch (Client sends a request id with each)
    singles = [client.enqueue("square", [n]) for n in range(20)]
    batch = client.enqueue_many([{"type": "square", "args": [n]} for n in range(20, 30)])
    cluster.network.faults = Faults()

    # Then there are 30 jobs, and once workers come each runs once with its result
    counts = lambda: client.stats()["queues"]["default"]  # noqa: E731
    assert sum(counts().values()) == 30
    cluster.add_worker("w-1")
    cluster.add_worker("w-2")
    jobs = singles + batch
    cluster.run_until(lambda: counts()["completed"] == 30, within=600)
    assert sum(counts().values()) == 30
    assert [client.get(job).result for job in jobs] == [n * n for n in range(30)]
    history.check(cluster, jobs)


def test_without_a_request_id_a_duplicated_enqueue_makes_two_jobs(make_cluster):
    cluster = make_cluster(0, seed=3)
    client = cluster.client()
    cluster.network.faults = Faults(duplicate=1.0)
    client.request("enqueue", job={"type": "square", "args": [1], "queue": "q"})
    cluster.network.faults = Faults()
    cluster.run_until(lambda: sum(client.stats()["queues"]["q"].values()) == 2, within=60)
