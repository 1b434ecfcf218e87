"""A whole cluster in one process runs jobs to completion with the right results."""

from __future__ import annotations


def test_a_cluster_of_three_workers_runs_a_thousand_jobs_with_correct_results(
    make_cluster, history
):
    cluster = make_cluster(3, seed=7)
    client = cluster.client()

    jobs = client.enqueue_many([{"type": "square", "args": [n]} for n in range(1000)])
    cluster.run_until(lambda: client.stats()["queues"]["default"]["completed"] == 1000, within=600)

    assert [client.get(job).result for job in jobs] == [n * n for n in range(1000)]
    workers_used = {client.get(job).raw["worker_id"] for job in jobs}
    assert len(workers_used) == 3
    history.check(cluster, jobs)


def test_the_same_seed_replays_the_same_assignment_of_jobs_to_workers(make_cluster):
    def assignment(seed: int) -> list[str]:
        cluster = make_cluster(3, seed=seed)
        client = cluster.client()
        jobs = client.enqueue_many([{"type": "square", "args": [n]} for n in range(60)])
        cluster.run_until(
            lambda: client.stats()["queues"]["default"]["completed"] == 60, within=600
        )
        hosts = {w["worker_id"]: w["hostname"] for w in client.stats()["workers"]}
        return [hosts[client.get(job).raw["worker_id"]] for job in jobs]

    assert assignment(11) == assignment(11)


def test_the_series_counts_every_completion_and_failure_in_virtual_seconds(make_cluster):
    cluster = make_cluster(3, seed=5)
    client = cluster.client()
    client.enqueue_many([{"type": "square", "args": [n]} for n in range(200)])
    client.enqueue_many([{"type": "boom", "max_attempts": 2}])  # fails twice
    cluster.run_until(lambda: client.stats()["queues"]["default"]["completed"] == 200, within=600)

    def counted() -> tuple[int, int]:
        series = client.stats(series=True)["series"]
        return sum(series["completed"]), sum(series["failed"])

    cluster.run_until(lambda: counted() == (200, 2), within=60)  # once their seconds are over
