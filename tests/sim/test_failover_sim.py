"""Failover in simulation: two coordinators share a MemoryDatabase (PostgreSQL's stand-in)
over the in-process network with a manual clock. One leads; when it dies, is cut off from
the database or stops, the other takes over, and no job is lost, run twice or run after its
ack; a job deleted by hand (extension "Delete") stays deleted across takeovers.
`cluster.leader()` asserts at every step that at most one coordinator serves."""

from __future__ import annotations

import random
from typing import Any

import pytest

from actors.coordinator_settings import CoordinatorSettings
from actors.leadership import POLLS_PER_TTL
from transport.errors import ConnectionLost, NotLeader, UnknownJob
from transport.inproc import Faults

TTL = 3.0
SETTINGS = CoordinatorSettings(visibility_timeout=120.0)
TERMINAL = ("completed", "discarded", "cancelled")


def ha_cluster(make_cluster, workers: int = 3, seed: int = 0, **options):
    return make_cluster(
        workers, seed=seed, coordinators=2, failover_timeout=TTL, settings=SETTINGS, **options
    )


def all_terminal(cluster, job_ids) -> bool:
    return cluster.leader() is not None and all(
        cluster.store.get(j)["state"] in TERMINAL for j in job_ids
    )


def mixed_jobs() -> list[dict]:
    return [{"type": "sleep", "args": [20]} for _ in range(6)] + [
        {"type": "square", "args": [n]} for n in range(12)
    ]


def test_one_coordinator_leads_and_the_other_stands_by(make_cluster):
    cluster = ha_cluster(make_cluster, workers=1)
    leader = cluster.leader()
    assert leader is not None
    cluster_view = cluster.client().stats()["cluster"]
    assert cluster_view["role"] == "leading" and cluster_view["term"] == 1
    assert cluster_view["leader"]["endpoint"] == leader.bind
    [standby] = [a for a in cluster.addresses if a != leader.bind]
    assert [s["endpoint"] for s in cluster_view["standbys"]] == [standby]
    # a standby that dies changes nothing, and is no longer listed after 3 failover_timeouts
    cluster.kill_coordinator(standby)
    cluster.advance(3 * TTL + 1)
    assert cluster.leader() is leader
    assert cluster.client().stats()["cluster"]["standbys"] == []


def test_when_the_leader_dies_the_standby_takes_over_and_running_jobs_resume(
    make_cluster, history
):
    cluster = ha_cluster(make_cluster, seed=1)
    client = cluster.client()
    jobs = [str(j) for j in client.enqueue_many(mixed_jobs())]
    cluster.run_until(lambda: client.stats()["queues"]["default"]["active"] >= 6, within=60)
    first = cluster.leader()
    killed_at = cluster.clock.now()
    cluster.kill_coordinator(first.bind)
    cluster.run_until(lambda: cluster.leader() is not None, within=60)
    took = cluster.clock.now() - killed_at
    assert took <= TTL + TTL / POLLS_PER_TTL + 0.01, took
    assert cluster.leader() is not first
    cluster.run_until(lambda: all_terminal(cluster, jobs), within=600)
    history.check(cluster, jobs)
    assert history.recoveries == []  # every running job was resumed by its worker
    starts = [job for _, job, _ in history.starts]
    assert all(starts.count(job) == 1 for job in jobs), "a job ran twice"
    assert client.stats()["cluster"]["term"] == 2


def test_a_leader_cut_off_from_the_database_steps_down_before_the_standby_serves(
    make_cluster, history
):
    cluster = ha_cluster(make_cluster, seed=2)
    client = cluster.client()
    jobs = [str(j) for j in client.enqueue_many(mixed_jobs())]
    cluster.advance(5)
    first = cluster.leader()
    cluster.cut_off.add(first.bind)
    # cluster.leader() asserts at every step that the two never serve at once
    cluster.run_until(lambda: cluster.leader() not in (None, first), within=60)
    assert first.leadership.keeper.core.role.value == "standby"
    cluster.cut_off.clear()  # the old leader reaches the database again: it stands by
    cluster.run_until(lambda: all_terminal(cluster, jobs), within=600)
    history.check(cluster, jobs)
    assert first.cluster()["role"] == "standby"
    assert first.cluster()["leader"]["endpoint"] == cluster.leader().bind


def test_a_leader_stopped_gracefully_hands_over_at_the_standbys_next_poll(make_cluster, history):
    cluster = ha_cluster(make_cluster, seed=3)
    client = cluster.client()
    jobs = [str(j) for j in client.enqueue_many(mixed_jobs())]
    cluster.advance(3)
    first = cluster.leader()
    stopped_at = cluster.clock.now()
    cluster.coordinators.pop(first.bind).stop()
    cluster.run_until(lambda: cluster.leader() is not None, within=60)
    assert cluster.clock.now() - stopped_at <= TTL / POLLS_PER_TTL + 0.01
    cluster.run_until(lambda: all_terminal(cluster, jobs), within=600)
    history.check(cluster, jobs)


def test_a_killed_leader_restarted_comes_back_as_a_standby(make_cluster):
    cluster = ha_cluster(make_cluster, workers=1, seed=4)
    first = cluster.leader()
    cluster.kill_coordinator(first.bind)
    cluster.run_until(lambda: cluster.leader() is not None, within=60)
    again = cluster.start_coordinator(first.bind)
    cluster.advance(TTL)
    assert again.cluster()["role"] == "standby"
    assert cluster.leader() is not again


# -- random fault schedules with failovers ------------------------------------------------------

HA_SEEDS = range(30)
HA_SLOW_SEEDS = range(30, 530)
CHAOS_S = 180.0


def delete_one_ended(cluster, client, jobs, deleted, maybe, rng) -> None:
    """An operator deletes a job that ended, read first. Gone for sure once the answer is
    `deleted`, or `unknown_job` (a resend to the next leader after the first landed); with
    only `not_leader`, or nothing, within the client's timeout (no leader then), maybe gone."""
    ended = [j for j in jobs if j not in deleted and j not in maybe]
    ended = [j for j in ended if cluster.store.get(j)["state"] in TERMINAL]
    if not ended:
        return
    job_id = rng.choice(ended)
    wire = cluster.store.get(job_id)
    try:
        client.delete(job_id)
    except UnknownJob:
        pass
    except (ConnectionLost, NotLeader):
        maybe[job_id] = wire
        return
    deleted[job_id] = wire


def run_ha_seed(make_cluster, history, seed: int) -> None:
    rng = random.Random(seed)
    cluster = ha_cluster(make_cluster, rng.randint(1, 3), seed, concurrency=rng.randint(1, 3))
    client = cluster.client()
    jobs = [str(j) for j in client.enqueue_many(mixed_jobs())]
    cluster.network.faults = Faults(
        drop=rng.uniform(0, 0.03), duplicate=rng.uniform(0, 0.03), delay=rng.uniform(0, 0.05)
    )
    deleted: dict[str, dict[str, Any]] = {}  # job id -> its Job map when deleted
    maybe: dict[str, dict[str, Any]] = {}  # deletes that got no answer
    ends = cluster.clock.now() + CHAOS_S
    while cluster.clock.now() < ends:
        cluster.advance(rng.uniform(1, 12))
        action, leader = rng.random(), cluster.leader()
        down = [a for a in cluster.addresses if a not in cluster.coordinators]
        if action < 0.15 and leader is not None:
            cluster.kill_coordinator(leader.bind)
        elif action < 0.3 and down:
            cluster.start_coordinator(down[0])
        elif action < 0.4 and leader is not None:
            cluster.cut_off.add(leader.bind)
        elif action < 0.55:
            cluster.cut_off.clear()
        elif action < 0.65 and cluster.workers:
            cluster.kill_worker(rng.choice(sorted(cluster.workers)))
            cluster.add_worker()
        elif action < 0.72 and leader is not None:  # an operator deletes a job that ended
            delete_one_ended(cluster, client, jobs, deleted, maybe, rng)
    cluster.network.faults = Faults()
    cluster.cut_off.clear()
    for address in cluster.addresses:
        if address not in cluster.coordinators:
            cluster.start_coordinator(address)
    if not cluster.workers:
        cluster.add_worker()
    kept = [j for j in jobs if j not in deleted and j not in maybe]
    cluster.run_until(lambda: all_terminal(cluster, kept), within=4 * 3600.0)
    deleted.update({j: wire for j, wire in maybe.items() if cluster.store.get(j) is None})
    history.check(cluster, jobs, deleted)


@pytest.mark.parametrize("seed", HA_SEEDS, ids=lambda s: f"seed_{s}")
def test_no_job_is_lost_across_random_failovers(make_cluster, history, seed):
    run_ha_seed(make_cluster, history, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", HA_SLOW_SEEDS, ids=lambda s: f"seed_{s}")
def test_no_job_is_lost_across_random_failovers_many_more_seeds(make_cluster, history, seed):
    run_ha_seed(make_cluster, history, seed)
