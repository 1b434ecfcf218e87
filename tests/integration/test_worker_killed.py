"""A worker process SIGKILLed while it runs jobs: no deregister, no goodbye; the coordinator
notices the silence and its jobs complete elsewhere as `worker_lost` attempts.

Worker and coordinator processes are started from tests/integration/node_script.py with short
timings (tests/integration/real_cluster.py); every wait is a condition with a deadline and
every process is killed at teardown (the `spawn` fixture). docs/FAILURES.md cites these tests.
"""

from __future__ import annotations

import signal

from tests.conftest import wait_for
from tests.integration.real_cluster import (
    FAST,
    HEARTBEAT_INTERVAL_S,
    HEARTBEAT_TIMEOUT_S,
    RECOVERY_MARGIN_S,
    all_in,
    hold_jobs,
    registered,
    start_worker,
    states_of,
)


def test_a_sigkilled_worker_s_jobs_complete_on_another_process_as_worker_lost_attempts(
    coordinator, spawn, clients, tmp_path
):
    # Given two worker processes, each running two jobs that wait for a release file
    node = coordinator(**FAST)
    client = clients(node.address)
    release = tmp_path / "release"
    first = start_worker(spawn, node.address, "worker-a")
    second = start_worker(spawn, node.address, "worker-b")
    ids = {registered(client, first): first, registered(client, second): second}
    jobs = hold_jobs(client, tmp_path, release, count=4)
    holder = {job: client.get(job).raw["worker_id"] for job in jobs}
    assert sorted(holder.values()) == sorted([*ids, *ids]), holder  # two on each process
    victim_id = holder[jobs[0]]
    victim = ids[victim_id]
    survivor_id, survivor = next((i, p) for i, p in ids.items() if p is not victim)
    lost = [job for job in jobs if holder[job] == victim_id]
    kept = [job for job in jobs if holder[job] != victim_id]

    # When the victim is SIGKILLed (no deregister, no FIN-driven cleanup in the protocol)
    assert all(client.get(job).attempt == 1 for job in jobs), "a job was retried before the kill"
    killed_at = victim.signal(signal.SIGKILL)
    victim.wait()

    # Then its two jobs come back as worker_lost attempts within heartbeat_timeout of the kill
    wait_for(
        lambda: all_in(client, lost, "available"),
        timeout=HEARTBEAT_TIMEOUT_S + 5,
        what="the victim's jobs recovered",
    )
    for job in lost:
        errors = client.get(job).errors
        assert [(e["type"], e["attempt"]) for e in errors] == [("worker_lost", 1)], errors
        delay = errors[0]["at"] - killed_at
        assert (
            HEARTBEAT_TIMEOUT_S - 2 * HEARTBEAT_INTERVAL_S - 0.1
            <= delay
            <= HEARTBEAT_TIMEOUT_S + RECOVERY_MARGIN_S
        ), f"recovered {delay:.3f} s after the kill"
        print(f"recovered {delay:.3f} s after the SIGKILL")
    assert states_of(client, kept) == ["active", "active"]  # the survivor's jobs are untouched
    victim_session = next(w for w in client.stats()["workers"] if w["worker_id"] == victim_id)
    assert victim_session["state"] == "terminated"

    # And once released, every job completes exactly once; the lost ones on the survivor
    release.touch()
    wait_for(lambda: all_in(client, jobs, "completed"), timeout=10, what="all jobs completed")
    for job in lost:
        done = client.get(job)
        assert (done.attempt, done.raw["worker_id"], done.result) == (2, survivor_id, survivor.pid)
    for job in kept:
        done = client.get(job)
        assert (done.attempt, done.errors, done.result) == (1, [], survivor.pid)
    counts = client.stats()["queues"]["default"]
    assert counts["completed"] == 4 and counts["active"] == counts["available"] == 0
