"""Randomised fault schedules: whatever the network and the workers do, no job is lost.

Each seed builds a cluster, enqueues a mix of jobs, then for a few virtual minutes drops,
duplicates, delays and reorders frames, partitions workers and kills them, pauses and
resumes the queue, and deletes jobs that ended (extension "Delete"), while a schedule makes a
job every 30 s. A third of the jobs are under
limits per key (their own concurrency or rate, or the one configured for `sleep`), watched at
every start. A workflow (a chain into a group with a callback) runs too. Then the network heals
and the run must end with every job terminal exactly once (a deleted one gone for good, as it
was when deleted), no job run after its ack, no limit ever exceeded, no step started before its
parents completed, and every step after a failed one cancelled.
A failure names its seed; `pytest tests/sim/test_random_faults.py -k "seed_17"` replays it.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from actors.coordinator_settings import CoordinatorSettings
from actors.limits import LimitRule, LimitRules
from nodes import chain, group, step
from nodes.client import Job
from tests.sim.limit_watch import LimitWatch
from tests.sim.step_order import StepOrder
from transport.inproc import Faults

DEFAULT_SEEDS = range(60)  # ~0.17 s each: the default suite stays under five minutes
SLOW_SEEDS = range(60, 2200)
JOBS_PER_RUN = 24
CHAOS_S = 240.0
SETTLE_WITHIN_S = 4 * 3600.0
SETTINGS = CoordinatorSettings(visibility_timeout=90.0)
SCHEDULE_EVERY_S = 30.0
SCHEDULE_ARG = 5
JOB_LIMITS = (LimitRule(job_type="sleep", concurrency=2),)  # per customer, or all sleeps


def _job_mix(rng: random.Random) -> list[dict]:
    jobs = []
    for n in range(JOBS_PER_RUN):
        kind = rng.choice(["square", "square", "sleep", "boom"])
        if kind == "square":
            jobs.append({"type": "square", "args": [n]})
        elif kind == "sleep":  # a sync handler, or an async one reporting progress
            napping = rng.choice(["sleep", "nap"])
            jobs.append({"type": napping, "args": [rng.uniform(1, 40)], "max_attempts": 5})
        else:  # a handler raising an Exception, or a BaseException that is not one
            failing = rng.choice(["boom", "exit", "interrupt"])
            jobs.append({"type": failing, "max_attempts": 2, "retry": {"initial_interval": 2.0}})
        jobs[-1].update(_limit(rng))
    return jobs


def _limit(rng: random.Random) -> dict:
    """A third of the jobs count under a customer's key: the configured limit of `sleep`, or
    one of their own (at most one active, or two starts per 20 s)."""
    draw = rng.random()
    key = {"concurrency_key": f"customer-{rng.randint(1, 3)}"}
    if draw < 0.15:
        return key
    if draw < 0.25:
        return {**key, "concurrency_limit": 1}
    if draw < 0.33:
        return {**key, "rate_limit": {"count": 2, "per": 20.0}}
    return {}


def _scheduled(cluster, first_slot: float, seed: int) -> list[str]:
    """The ids of the schedule's jobs, checked: one per slot of its grid, from the first slot
    to the last one due before it was removed, none twice, none missing."""
    mine = [j for j in cluster.store.list(limit=1000) if j.get("meta", {}).get("schedule")]
    slots = sorted(job["meta"]["slot"] for job in mine)
    due = int((cluster.clock.now() - first_slot) // SCHEDULE_EVERY_S) + 1
    grid = [first_slot + n * SCHEDULE_EVERY_S for n in range(len(slots))]
    assert slots == grid, f"slots made twice or skipped (seed={seed}): {slots}"
    assert due - 1 <= len(slots) <= due, f"{len(slots)} slots made, {due} due (seed={seed})"
    return [job["id"] for job in mine]


def _check_results(client, flow: list[str], seed: int) -> None:
    """Each completed step computed from its parents' results: square, square, then the total
    of the square (the sleep's result, a bool, is no number)."""
    first, squared, _, total = (client.get(job_id) for job_id in flow[:4])
    if squared.state == "completed" and first.state == "completed":
        assert squared.result == first.result**2, f"a result not passed on (seed={seed})"
    if total.state == "completed" and squared.state == "completed":
        assert total.result == squared.result, f"the callback's results (seed={seed})"


def _check_progress(client, job_id: str, deleted, seed: int) -> None:
    """`get` shows progress only of an active job, and only its current attempt's."""
    if job_id in deleted:
        return
    job = client.get(job_id).raw
    progress = job.get("progress")
    if progress is not None:
        assert job["state"] == "active", f"progress of a {job['state']} job (seed={seed})"
        assert progress["attempt"] == job["attempt"], f"a lost attempt's progress (seed={seed})"
        assert job["type"] == "nap" and progress["fraction"] in (0.5, 1.0), seed


def _all_terminal(cluster, job_ids, deleted) -> bool:
    return all(
        cluster.store.get(j)["state"] in ("completed", "discarded", "cancelled")
        for j in job_ids
        if j not in deleted
    )


class Remembered:
    """The client's `get`, and the jobs deleted during the run as they were when deleted: the
    checks of the workflow read its steps, some of which may be gone."""

    def __init__(self, client: Any, deleted: dict[str, dict[str, Any]]) -> None:
        self.client, self.deleted = client, deleted

    def get(self, job_id: str) -> Job:
        wire = self.deleted.get(job_id)
        return self.client.get(job_id) if wire is None else Job.from_wire(wire)


def _delete_one_ended(cluster, client, candidates, deleted, rng) -> None:
    """An operator deletes a job that ended (one of the mix or a workflow step): read first,
    so the checks know what it was."""
    terminal = ("completed", "discarded", "cancelled")
    ended = [
        j for j in candidates if j not in deleted and cluster.store.get(j)["state"] in terminal
    ]
    if ended:
        job_id = rng.choice(ended)
        deleted[job_id] = client.get(job_id).raw
        client.delete(job_id)


def run_seed(make_cluster, history, seed: int) -> None:
    rng = random.Random(seed)
    cluster = make_cluster(
        rng.randint(1, 4),
        seed=seed,
        settings=SETTINGS,
        concurrency=rng.randint(1, 3),
        job_limits=JOB_LIMITS,
    )
    watch = LimitWatch(LimitRules(JOB_LIMITS))
    cluster.events.subscribe(watch.observe)
    steps = StepOrder()
    cluster.events.subscribe(steps.observe)
    client = cluster.client()
    job_ids = [str(job) for job in client.enqueue_many(_job_mix(rng))]
    cancel_target = rng.choice(job_ids)
    flow = client.enqueue_workflow(
        chain(
            step("square", [rng.randint(1, 9)]),
            group(step("square"), step("sleep", [rng.uniform(1, 30)], pass_results=False)),
            step("total"),
        ),
        on_failure=rng.choice(["cancel", "continue"]),
    )["job_ids"]
    # A batch whose callbacks each have a policy of their own: one runs whatever its members
    # did, one only when all completed, one only when one failed (a member may be a `boom`)
    flow += client.enqueue_workflow(
        group(
            step("square", [rng.randint(1, 9)]),
            step(rng.choice(["square", "boom"]), [3], max_attempts=1),
            callback=group(
                step("total", on_failure="continue"),
                step("total", on_failure="cancel"),
                step("total", on_failure="only"),
            ),
        )
    )["job_ids"]
    # A schedule runs all along: every slot due during the chaos makes exactly one job
    first_slot = client.put_schedule(
        "tick", "square", [SCHEDULE_ARG], every=SCHEDULE_EVERY_S, overlap="allow"
    )["next_runs"][0]

    cluster.network.faults = Faults(
        drop=rng.uniform(0, 0.05),
        duplicate=rng.uniform(0, 0.05),
        delay=rng.uniform(0, 0.1),
        reorder=rng.uniform(0, 0.1),
    )
    partitioned: set[str] = set()
    deleted: dict[str, dict[str, Any]] = {}  # job id -> its Job map when it was deleted
    chaos_ends = cluster.clock.now() + CHAOS_S
    while cluster.clock.now() < chaos_ends:
        cluster.advance(rng.uniform(1, 15))
        action = rng.random()
        names = sorted(cluster.workers)
        if action < 0.15 and names:
            cluster.kill_worker(rng.choice(names))
            cluster.add_worker()
        elif action < 0.3 and names:
            name = rng.choice(names)
            cluster.network.partition(name)
            partitioned.add(name)
        elif action < 0.45 and partitioned:
            name = sorted(partitioned)[0]
            cluster.network.heal(name)
            partitioned.discard(name)
        elif action < 0.5:
            cluster.add_worker()
        elif action < 0.55 and cancel_target:
            cluster.network.faults, saved = Faults(), cluster.network.faults
            client.cancel(cancel_target)
            cluster.network.faults, cancel_target = saved, ""
        elif action < 0.6:  # an operator pauses the queue, or resumes it
            cluster.network.faults, saved = Faults(), cluster.network.faults
            paused = client.stats()["paused"]
            (client.resume_queue if paused else client.pause_queue)("default")
            cluster.network.faults = saved
        elif action < 0.65:  # an operator deletes a job that ended
            cluster.network.faults, saved = Faults(), cluster.network.faults
            candidates = [j for j in job_ids + flow if j != cancel_target]  # cancelled later
            _delete_one_ended(cluster, client, candidates, deleted, rng)
            cluster.network.faults = saved
        elif action < 0.7:  # an operator looks at a job: its progress is its attempt's own
            cluster.network.faults, saved = Faults(), cluster.network.faults
            _check_progress(client, rng.choice(job_ids), deleted, seed)
            cluster.network.faults = saved

    cluster.network.faults = Faults()
    client.resume_queue("default")
    client.remove_schedule("tick")
    job_ids += _scheduled(cluster, first_slot, seed) + flow
    for name in sorted(partitioned):
        cluster.network.heal(name)
    if not cluster.workers:
        cluster.add_worker()
    cluster.run_until(lambda: _all_terminal(cluster, job_ids, deleted), within=SETTLE_WITHIN_S)
    history.check(cluster, job_ids, deleted)
    assert not watch.breaches, f"limits exceeded (seed={seed}): {watch.breaches}"
    remembered = Remembered(client, deleted)
    steps.check(remembered, flow)
    steps.check_policy(remembered, flow)
    _check_results(remembered, flow, seed)
    for job_id in job_ids:
        stored = deleted.get(job_id) or cluster.store.get(job_id)
        if stored["type"] == "square" and stored["state"] == "completed":
            assert stored["result"] == stored["args"][0] ** 2, f"wrong result (seed={seed})"


@pytest.mark.parametrize("seed", DEFAULT_SEEDS, ids=lambda s: f"seed_{s}")
def test_no_job_is_lost_or_run_after_its_ack_under_random_faults(make_cluster, history, seed):
    run_seed(make_cluster, history, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS, ids=lambda s: f"seed_{s}")
def test_no_job_is_lost_under_random_faults_many_more_seeds(make_cluster, history, seed):
    run_seed(make_cluster, history, seed)
