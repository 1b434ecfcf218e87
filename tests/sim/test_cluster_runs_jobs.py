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
