"""Job semantics in simulation (PROTOCOL.md sections 4-6 and the job-semantics issue): whole
clusters on the in-process network with a ManualClock, one test per rule.

Ordering, scheduled jobs, retries and the dead set, unique keys, cancellation in every state,
results, atomic batches, label routing, unroutable jobs and handler defaults. Every wait is
`run_until` (virtual time with a deadline) or `advance`; nothing sleeps.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from actors import events
from actors.coordinator_settings import CoordinatorSettings
from actors.store.memory import MemoryStore
from actors.worker import current_job
from nodes.client import JobFailed
from nodes.cluster import COORDINATOR_ADDRESS, Cluster
from nodes.worker_node import WorkerNode
from transport import codec
from transport.errors import BadRequest, UnknownJob

HEARTBEAT_INTERVAL_S = 5.0  # CoordinatorSettings default: how late a worker learns of a cancel
REAPER_INTERVAL_S = 1.0  # CoordinatorSettings default: how late a due job is promoted


def host_of(client: Any, job_id: str) -> str:
    """The name of the worker the job is (or was last) reserved to."""
    hosts = {w["worker_id"]: w["hostname"] for w in client.stats()["workers"]}
    return hosts[client.get(job_id).raw["worker_id"]]


def stored(cluster: Cluster, job_id: str) -> dict[str, Any]:
    """The job as the store holds it, read without moving virtual time."""
    job = cluster.store.get(job_id)
    assert job is not None, f"job {job_id} not stored"
    return job


def counts(client: Any, queue: str = "default") -> dict[str, int]:
    return client.stats()["queues"].get(queue, {})


# -- ordering (section 3.4) -----------------------------------------------------------------------


def test_a_worker_takes_its_queues_in_the_order_it_names_them_then_priority_then_age(
    make_cluster, history
):
    cluster = make_cluster(0, seed=21)
    client = cluster.client()
    plan = [  # (queue, priority, name), in enqueue order
        ("alpha", 0, "a-old"),
        ("zeta", 0, "z-old"),
        ("alpha", 9, "a-urgent"),
        ("zeta", -1, "z-low"),
        ("zeta", 5, "z-urgent"),
        ("alpha", 0, "a-new"),
        ("zeta", 0, "z-new"),
    ]
    names = {
        client.enqueue("square", [n], queue=queue, priority=priority): name
        for n, (queue, priority, name) in enumerate(plan)
    }

    # Named zeta first: not alphabetical, not by age across queues.
    cluster.add_worker("w", queues=("zeta", "alpha"), concurrency=1)
    cluster.run_until(
        lambda: counts(client, "zeta")["completed"] + counts(client, "alpha")["completed"] == 7
    )

    order = [names[job_id] for _, job_id, _ in sorted(history.starts)]
    assert order == ["z-urgent", "z-old", "z-new", "z-low", "a-urgent", "a-old", "a-new"]
    history.check(cluster, list(names))


# -- scheduled jobs (section 5) -------------------------------------------------------------------


def test_a_scheduled_job_is_not_handed_out_before_it_is_due_and_the_reaper_promotes_it(
    make_cluster, history
):
    cluster = make_cluster(1, seed=22, concurrency=1)
    client = cluster.client()
    due = cluster.clock.now() + 100
    job = client.enqueue("square", [3], scheduled_at=due)
    assert client.get(job).state == "scheduled"

    cluster.advance(due - 5 - cluster.clock.now())
    assert stored(cluster, job)["state"] == "scheduled"
    assert history.starts == []

    cluster.run_until(lambda: stored(cluster, job)["state"] == "completed", within=30)
    started_at = stored(cluster, job)["started_at"]
    assert due <= started_at <= due + REAPER_INTERVAL_S
    assert client.get(job).result == 9
    history.check(cluster, [job])


def test_a_job_scheduled_in_the_past_is_handed_out_at_once(make_cluster, history):
    cluster = make_cluster(1, seed=23, concurrency=1)
    client = cluster.client()
    enqueued_at = cluster.clock.now()
    job = client.enqueue("square", [4], scheduled_at=enqueued_at - 60)
    cluster.run_until(lambda: stored(cluster, job)["state"] == "completed", within=30)
    assert stored(cluster, job)["started_at"] - enqueued_at < REAPER_INTERVAL_S


# -- retries and the dead set (section 5) ---------------------------------------------------------


def test_a_failing_job_is_retried_after_the_jittered_backoff_and_keeps_every_error(make_cluster):
    starts: list[tuple[int, float]] = []

    def flaky() -> None:
        job = current_job()
        assert job is not None
        starts.append((job.attempt, cluster.clock.now()))
        raise ValueError(f"attempt {job.attempt} failed")

    cluster = make_cluster(1, seed=24, concurrency=1, handlers={"flaky": flaky})
    client = cluster.client()
    retry = {"initial_interval": 10.0, "backoff_coefficient": 3.0, "max_interval": 50.0}
    job = client.enqueue("flaky", max_attempts=4, retry=retry)
    delays = {1: 10.0, 2: 30.0, 3: 50.0}  # min(10 * 3^(n-1), 50) after attempt n

    for attempt, delay in delays.items():
        cluster.run_until(
            lambda: len(stored(cluster, job)["errors"]) == attempt,  # noqa: B023
            within=200,
        )
        waiting = stored(cluster, job)
        assert waiting["state"] == "retryable"
        failed_at = waiting["errors"][-1]["at"]
        assert 0.5 * delay <= waiting["next_attempt_at"] - failed_at <= delay

    cluster.run_until(lambda: stored(cluster, job)["state"] == "discarded", within=200)
    errors = client.get(job).errors
    assert [(e["attempt"], e["type"], e["message"]) for e in errors] == [
        (n, "ValueError", f"attempt {n} failed") for n in (1, 2, 3, 4)
    ]
    assert [attempt for attempt, _ in starts] == [1, 2, 3, 4]
    waited = []
    for (attempt, started), error in zip(starts[1:], errors, strict=False):
        delay = delays[attempt - 1]
        gap = started - error["at"]
        assert 0.5 * delay <= gap <= delay + REAPER_INTERVAL_S, (attempt, gap)
        waited.append(gap / delay)
    assert min(waited) < 0.99  # jitter is on by default: not every delay is the full one


def test_a_discarded_job_is_kept_and_retried_by_hand_runs_again_with_its_history(
    make_cluster, history
):
    def flaky() -> str:
        job = current_job()
        assert job is not None
        if job.attempt <= 2:
            raise RuntimeError(f"attempt {job.attempt}")
        return "third time lucky"

    cluster = make_cluster(1, seed=25, concurrency=1, handlers={"flaky": flaky})
    client = cluster.client()
    job = client.enqueue("flaky", max_attempts=2, retry={"initial_interval": 1.0})
    cluster.run_until(lambda: stored(cluster, job)["state"] == "discarded", within=60)

    cluster.advance(3600)  # the dead set keeps it
    dead = client.get(job)
    assert dead.state == "discarded" and dead.attempt == 2 and len(dead.errors) == 2
    assert counts(client)["discarded"] == 1

    assert client.retry(job) == "available"
    cluster.run_until(lambda: stored(cluster, job)["state"] == "completed", within=60)
    done = client.get(job)
    assert done.result == "third time lucky"
    assert done.attempt == 3  # attempts keep counting
    assert [e["message"] for e in done.errors] == ["attempt 1", "attempt 2"]
    assert done.raw["max_attempts"] == 4  # one more full round: attempt + max_attempts
    assert counts(client)["discarded"] == 0 and counts(client)["completed"] == 1


def test_a_job_retried_by_hand_gets_one_more_full_round_of_attempts(make_cluster, history):
    cluster = make_cluster(1, seed=26, concurrency=1)
    client = cluster.client()
    job = client.enqueue("boom", max_attempts=2, retry={"initial_interval": 1.0})
    cluster.run_until(lambda: stored(cluster, job)["state"] == "discarded", within=60)
    client.retry(job)
    cluster.run_until(lambda: stored(cluster, job)["state"] == "discarded", within=60)
    again = client.get(job)
    assert again.attempt == 4
    assert [e["attempt"] for e in again.errors] == [1, 2, 3, 4]


def test_only_a_discarded_job_can_be_retried_by_hand(make_cluster):
    cluster = make_cluster(1, seed=27, concurrency=1)
    client = cluster.client()
    job = client.enqueue("square", [2])
    cluster.run_until(lambda: stored(cluster, job)["state"] == "completed", within=30)
    with pytest.raises(BadRequest, match="only a discarded job"):
        client.retry(job)
    with pytest.raises(UnknownJob):
        client.retry("01890000-0000-7000-8000-000000000000")
    assert client.get(job).state == "completed"


def test_a_dead_job_retried_by_hand_takes_its_unique_key_back_unless_a_live_job_holds_it(
    make_cluster,
):
    def fails_once_then_takes_long() -> None:
        job = current_job()
        assert job is not None
        if job.attempt == 1:
            raise RuntimeError("first attempt")
        job.sleep(100)

    def sleep(seconds: float) -> bool:
        job = current_job()
        assert job is not None
        return job.sleep(seconds)

    handlers = {"fragile": fails_once_then_takes_long, "sleep": sleep}
    cluster = make_cluster(1, seed=51, concurrency=1, handlers=handlers)
    client = cluster.client()
    dead = client.enqueue("fragile", max_attempts=1, unique_key="k")
    cluster.run_until(lambda: stored(cluster, dead)["state"] == "discarded", within=30)
    holder = client.enqueue("sleep", [50], unique_key="k")  # the key is free: a new job
    assert holder != dead

    with pytest.raises(BadRequest, match="held by"):
        client.retry(dead)
    assert client.get(dead).state == "discarded"

    cluster.run_until(lambda: stored(cluster, holder)["state"] == "completed", within=120)
    assert client.retry(dead) == "available"  # it runs again (for 100 s): the key is its own
    duplicate = client.request("enqueue", job={"type": "sleep", "args": [1], "unique_key": "k"})
    assert (duplicate["job_id"], duplicate["duplicate"]) == (dead, True)


# -- unique jobs (section 5) ----------------------------------------------------------------------


def test_a_unique_key_of_a_live_job_returns_that_job_until_it_is_terminal(make_cluster, history):
    cluster = make_cluster(1, seed=28, concurrency=1)
    client = cluster.client()
    spec = {"type": "sleep", "args": [30], "unique_key": "nightly"}
    first = client.enqueue("sleep", [30], unique_key="nightly")

    again = client.request("enqueue", job=spec)
    assert (again["job_id"], again["duplicate"]) == (first, True)
    cluster.run_until(lambda: stored(cluster, first)["state"] == "active", within=30)
    while_active = client.request("enqueue", job=spec)
    assert (while_active["job_id"], while_active["state"]) == (first, "active")
    assert while_active["duplicate"] is True

    cluster.run_until(lambda: stored(cluster, first)["state"] == "completed", within=60)
    fresh = client.request("enqueue", job=spec)
    assert fresh["job_id"] != first and fresh["duplicate"] is False
    assert counts(client)["completed"] + counts(client)["available"] + counts(client)["active"] == 2
    cluster.run_until(lambda: stored(cluster, fresh["job_id"])["state"] == "completed", within=60)
    history.check(cluster, [first, fresh["job_id"]])


def test_a_unique_key_held_by_a_scheduled_or_retryable_job_returns_that_job(make_cluster):
    cluster = make_cluster(1, seed=29, concurrency=1)
    client = cluster.client()
    later = client.enqueue(
        "square", [1], unique_key="later", scheduled_at=cluster.clock.now() + 500
    )
    failing = client.enqueue("boom", unique_key="failing", retry={"initial_interval": 500.0})
    cluster.run_until(lambda: stored(cluster, failing)["state"] == "retryable", within=30)

    for key, holder in (("later", later), ("failing", failing)):
        reply = client.request("enqueue", job={"type": "square", "args": [2], "unique_key": key})
        assert (reply["job_id"], reply["duplicate"]) == (holder, True)
    assert sum(counts(client).values()) == 2


# -- cancellation in every state (section 4) ------------------------------------------------------


def test_cancelling_a_scheduled_job_cancels_it_and_it_never_runs(make_cluster, history):
    cluster = make_cluster(1, seed=30, concurrency=1)
    client = cluster.client()
    job = client.enqueue("square", [2], scheduled_at=cluster.clock.now() + 100)
    assert client.cancel(job) == "cancelled"
    cluster.advance(200)
    assert client.get(job).state == "cancelled"
    assert history.starts == []
    history.check(cluster, [job])


def test_cancelling_an_available_job_cancels_it_and_it_never_runs(make_cluster, history):
    cluster = make_cluster(0, seed=31)
    client = cluster.client()
    job = client.enqueue("square", [2])
    assert client.get(job).state == "available"
    assert client.cancel(job) == "cancelled"
    cluster.add_worker("late", concurrency=1)
    cluster.advance(60)
    assert client.get(job).state == "cancelled"
    assert history.starts == []
    history.check(cluster, [job])


def test_cancelling_a_retryable_job_cancels_it_and_it_is_not_retried(make_cluster, history):
    cluster = make_cluster(1, seed=32, concurrency=1)
    client = cluster.client()
    job = client.enqueue("boom", retry={"initial_interval": 100.0})
    cluster.run_until(lambda: stored(cluster, job)["state"] == "retryable", within=30)
    assert client.cancel(job) == "cancelled"
    cluster.advance(300)
    cancelled = client.get(job)
    assert cancelled.state == "cancelled"
    assert [e["attempt"] for e in cancelled.errors] == [1]  # its history is kept
    assert [attempt for _, _, attempt in history.starts] == [1]
    history.check(cluster, [job])


def test_cancelling_an_active_job_tells_its_handler_which_stops_early(make_cluster, history):
    seen: list[tuple[bool, bool, float]] = []

    def long_job() -> str:
        job = current_job()
        assert job is not None
        finished = job.sleep(1000)
        seen.append((finished, job.cancelled, cluster.clock.now()))
        return "ran to the end"

    handlers = {"long": long_job, "square": lambda x: x * x}
    cluster = make_cluster(1, seed=33, concurrency=1, handlers=handlers)
    client = cluster.client()
    job = client.enqueue("long")
    cluster.run_until(lambda: stored(cluster, job)["state"] == "active", within=30)

    cancelled_at = cluster.clock.now()
    assert client.cancel(job) == "cancelled"
    cluster.run_until(lambda: seen, within=HEARTBEAT_INTERVAL_S + 1)  # the next beat tells it
    [(finished, flag, stopped_at)] = seen
    assert finished is False and flag is True
    assert stopped_at - cancelled_at <= HEARTBEAT_INTERVAL_S + 1

    # The worker abandons the job (never reports it) and takes the next one in its slot.
    after = client.enqueue("square", [5])
    cluster.run_until(  # the cancelled job's slot is free again: the worker fetches into it
        lambda: stored(cluster, after)["state"] == "completed", within=30
    )
    assert client.get(job).state == "cancelled"
    assert job not in history.completed_at
    history.check(cluster, [job, after])


def test_a_handler_that_ignores_a_cancel_finishes_but_the_job_stays_cancelled(
    make_cluster, history
):
    def stubborn() -> str:
        job = current_job()
        assert job is not None
        job.sleep(1)  # ignores what sleep says
        return "done anyway"

    cluster = make_cluster(1, seed=34, concurrency=1, handlers={"stubborn": stubborn})
    client = cluster.client()
    jobs = []
    for _ in range(3):  # in a row: after each refused ack the worker takes the next job
        job = client.enqueue("stubborn")
        cluster.run_until(lambda: stored(cluster, job)["state"] == "active", within=30)  # noqa: B023
        assert client.cancel(job) == "cancelled"
        jobs.append(job)
    cluster.advance(30)
    assert [client.get(job).state for job in jobs] == ["cancelled"] * 3
    assert not set(jobs) & set(history.completed_at)
    history.check(cluster, jobs)


def test_an_ack_or_fail_after_a_cancel_gets_not_owner_and_the_beat_says_abandon(
    make_cluster, raw_worker
):
    cluster = make_cluster(0, seed=35)
    client = cluster.client()
    job = client.enqueue("square", [3])
    raw = raw_worker(cluster)
    raw.join(["default"])
    [fetched] = raw.request("fetch", worker_id=raw.worker_id, count=1)["jobs"]
    assert fetched["id"] == job

    assert client.cancel(job) == "cancelled"
    beat = raw.request("beat", worker_id=raw.worker_id, state="running", active_job_ids=[job])
    assert beat["cancel_job_ids"] == [job]
    ack = raw.request("ack", worker_id=raw.worker_id, job_id=job, attempt=1, result=9)
    assert (ack["type"], ack["code"]) == ("error", "not_owner")
    error = {"type": "E", "message": "late"}
    fail = raw.request("fail", worker_id=raw.worker_id, job_id=job, attempt=1, error=error)
    assert (fail["type"], fail["code"]) == ("error", "not_owner")
    cancelled = client.get(job)
    assert cancelled.state == "cancelled" and cancelled.result is None and cancelled.errors == []


def test_an_enqueue_handed_at_once_to_a_parked_fetch_is_answered_as_available(
    make_cluster, raw_worker
):
    cluster = make_cluster(0, seed=38)
    raw = raw_worker(cluster)
    raw.join(["default"])
    raw.rid += 1
    fetch_rid = raw.rid
    raw.link.send(
        codec.encode(
            {"type": "fetch", "rid": fetch_rid, "worker_id": raw.worker_id, "count": 1, "wait": 30}
        )
    )
    cluster.settle()  # the fetch is parked, with a standing claim on the queue
    reply = cluster.client().request("enqueue", job={"type": "square", "args": [3]})
    assert reply["state"] == "available"  # what the enqueue did, not what the fetch did next
    cluster.run_until(lambda: fetch_rid in raw.replies, within=5)
    [handed] = raw.replies[fetch_rid]["jobs"]
    assert handed["id"] == reply["job_id"] and handed["state"] == "active"


def test_cancelling_a_terminal_job_leaves_it_as_it_is(make_cluster):
    cluster = make_cluster(1, seed=36, concurrency=1)
    client = cluster.client()
    job = client.enqueue("square", [6])
    cluster.run_until(lambda: stored(cluster, job)["state"] == "completed", within=30)
    assert client.cancel(job) == "completed"
    assert client.get(job).result == 36


# -- results (section 4) --------------------------------------------------------------------------


def test_a_job_handle_waits_for_and_returns_the_result(make_cluster):
    cluster = make_cluster(1, seed=37, concurrency=1)
    client = cluster.client()
    handle = client.enqueue("square", [7])
    assert handle.result(timeout=60) == 49


def test_get_with_wait_is_answered_when_the_job_ends(make_cluster):
    cluster = make_cluster(1, seed=38, concurrency=1)
    client = cluster.client()
    job = client.enqueue("sleep", [20])
    cluster.run_until(lambda: stored(cluster, job)["state"] == "active", within=30)
    asked_at = cluster.clock.now()
    answer = client.get(job, wait=100)
    assert answer.state == "completed"
    assert 19 <= cluster.clock.now() - asked_at <= 21


def test_get_with_wait_answers_the_job_as_it_is_when_the_wait_runs_out(make_cluster):
    cluster = make_cluster(1, seed=39, concurrency=1)
    client = cluster.client()
    job = client.enqueue("sleep", [1000])
    cluster.run_until(lambda: stored(cluster, job)["state"] == "active", within=30)
    asked_at = cluster.clock.now()
    assert client.get(job, wait=15).state == "active"
    assert 15 <= cluster.clock.now() - asked_at <= 16
    with pytest.raises(TimeoutError, match="still active"):
        job.result(timeout=5)


def test_a_job_handle_raises_the_error_of_a_discarded_job(make_cluster):
    cluster = make_cluster(1, seed=40, concurrency=1)
    client = cluster.client()
    handle = client.enqueue("boom", max_attempts=1)
    with pytest.raises(JobFailed, match="ZeroDivisionError") as failure:
        handle.result(timeout=60)
    assert failure.value.job.state == "discarded"
    assert failure.value.job.errors[-1]["type"] == "ZeroDivisionError"


def test_a_job_handle_raises_for_a_cancelled_job(make_cluster):
    cluster = make_cluster(0, seed=41)
    client = cluster.client()
    handle = client.enqueue("square", [2])
    client.cancel(handle)
    with pytest.raises(JobFailed, match="cancelled"):
        handle.result(timeout=10)


def test_a_result_over_the_size_limit_discards_the_job_with_result_too_large(make_cluster):
    cluster = make_cluster(1, seed=42, concurrency=1, handlers={"big": lambda: "x" * (600 * 1024)})
    client = cluster.client()
    handle = client.enqueue("big")
    with pytest.raises(JobFailed, match="ResultTooLarge"):
        handle.result(timeout=60)
    failed = client.get(handle)
    assert failed.state == "discarded" and failed.attempt == 1  # not retried: it cannot shrink
    assert failed.result is None


def test_results_and_dead_jobs_are_kept_for_their_retention_then_forgotten(make_cluster):
    store = MemoryStore(completed_retention_s=60.0, discarded_retention_s=120.0)
    cluster = make_cluster(1, seed=43, concurrency=1, store=store)
    client = cluster.client()
    done = client.enqueue("square", [8])
    dead = client.enqueue("boom", max_attempts=1)
    cluster.run_until(
        lambda: (
            stored(cluster, done)["state"] == "completed"
            and stored(cluster, dead)["state"] == "discarded"
        ),
        within=30,
    )
    ended = max(stored(cluster, done)["completed_at"], stored(cluster, dead)["completed_at"])

    cluster.advance(ended + 55 - cluster.clock.now())
    assert client.get(done).result == 64
    cluster.advance(ended + 60 + 2 * REAPER_INTERVAL_S - cluster.clock.now())
    with pytest.raises(UnknownJob):
        client.get(done)
    assert client.get(dead).state == "discarded"  # the dead set is kept longer
    cluster.advance(ended + 120 + 2 * REAPER_INTERVAL_S - cluster.clock.now())
    with pytest.raises(UnknownJob):
        client.get(dead)


# -- batch enqueue is atomic (section 4) ----------------------------------------------------------


def enqueued_counter(cluster: Cluster) -> list[str]:
    seen: list[str] = []
    cluster.events.subscribe(
        lambda name, payload: (
            seen.append(payload["job"].id) if name == events.JOB_ENQUEUED else None
        )
    )
    return seen


def test_one_invalid_spec_rejects_the_whole_batch_and_creates_nothing(make_cluster, history):
    cluster = make_cluster(1, seed=44, concurrency=1, queues=("default", "other"))
    client = cluster.client()
    enqueued = enqueued_counter(cluster)
    batch = [
        {"type": "square", "args": [1]},
        {"type": "square", "args": [2], "queue": "other"},
        {"type": "square", "args": [3], "priority": "high"},
        {"type": "square", "args": [4]},
    ]
    with pytest.raises(BadRequest, match=r"jobs\[2\]"):
        client.enqueue_many(batch)
    cluster.advance(30)
    assert enqueued == []
    assert history.starts == []
    assert all(sum(by_state.values()) == 0 for by_state in client.stats()["queues"].values())

    accepted = client.enqueue_many([spec for spec in batch if spec.get("priority") is None])
    cluster.run_until(
        lambda: all(stored(cluster, job)["state"] == "completed" for job in accepted), within=60
    )
    assert [client.get(job).result for job in accepted] == [1, 4, 16]


def test_a_batch_refused_by_the_queue_limit_creates_nothing_either(make_cluster):
    settings = CoordinatorSettings(visibility_timeout=120.0, max_queues=2)
    cluster = make_cluster(1, seed=45, concurrency=1, settings=settings)
    client = cluster.client()
    enqueued = enqueued_counter(cluster)
    batch = [
        {"type": "square", "args": [n], "queue": q} for n, q in enumerate(["default", "a", "b"])
    ]
    with pytest.raises(BadRequest):
        client.enqueue_many(batch)
    cluster.advance(10)
    assert enqueued == []
    assert all(sum(by_state.values()) == 0 for by_state in client.stats()["queues"].values())


# -- label routing (section 6) --------------------------------------------------------------------


def test_the_most_specific_worker_gets_a_routed_job_even_while_it_is_busy(make_cluster, history):
    cluster = make_cluster(0, seed=46)
    cluster.add_worker("plain", concurrency=1)
    cluster.add_worker("gpu", concurrency=1, labels={"gpu": ["a100"]})
    client = cluster.client()
    first = client.enqueue("sleep", [100], route={"gpu": "a100"})
    cluster.run_until(lambda: stored(cluster, first)["state"] == "active", within=30)
    assert host_of(client, first) == "gpu"

    second = client.enqueue("square", [2], route={"gpu": "a100"})
    plain_job = client.enqueue("square", [3])  # no gpu key: only plain is eligible
    cluster.run_until(lambda: stored(cluster, plain_job)["state"] == "completed", within=30)
    assert host_of(client, plain_job) == "plain"

    cluster.advance(50)  # plain stays idle; the routed job waits for the busy gpu worker
    assert stored(cluster, second)["state"] == "available"
    assert client.stats()["unroutable"] == {}  # it has an eligible worker: it is not stuck

    cluster.run_until(lambda: stored(cluster, second)["state"] == "completed", within=100)
    assert host_of(client, second) == "gpu"
    assert stored(cluster, second)["started_at"] >= stored(cluster, first)["completed_at"]
    history.check(cluster, [first, second, plain_job])


def test_a_waiting_job_goes_to_the_fewest_active_then_the_longest_waiting_worker(
    make_cluster, history
):
    cluster = make_cluster(0, seed=47)
    client = cluster.client()
    cluster.add_worker("a", concurrency=2, fetch_wait=25.0)
    cluster.advance(1)
    job1 = client.enqueue("sleep", [200])
    cluster.run_until(lambda: stored(cluster, job1)["state"] == "active", within=5)
    assert host_of(client, job1) == "a"  # the only worker; it fetches again at once (1 active)

    cluster.advance(2)
    cluster.add_worker("b", concurrency=2, fetch_wait=25.0)  # waits less long, but is idle
    cluster.advance(1)
    job2 = client.enqueue("sleep", [200])
    cluster.run_until(lambda: stored(cluster, job2)["state"] == "active", within=5)
    assert host_of(client, job2) == "b"  # fewest active wins over waiting longest

    job3 = client.enqueue("sleep", [200])  # both have 1 active: a has waited longer
    cluster.run_until(lambda: stored(cluster, job3)["state"] == "active", within=5)
    assert host_of(client, job3) == "a"
    assert cluster.clock.now() - stored(cluster, job1)["started_at"] < 20  # fetches still parked


def test_a_worker_with_functions_only_takes_those_job_types(make_cluster, history):
    cluster = make_cluster(0, seed=48)
    cluster.add_worker("squarer", handlers={"square": history.wrap(lambda x: x * x)})
    cluster.add_worker("greeter", handlers={"greet": history.wrap(lambda name: f"hi {name}")})
    client = cluster.client()
    squares = [client.enqueue("square", [n]) for n in range(4)]
    greets = [client.enqueue("greet", [name]) for name in ("ann", "bob", "cy", "di")]
    jobs = squares + greets
    cluster.run_until(
        lambda: all(stored(cluster, job)["state"] == "completed" for job in jobs), within=60
    )
    assert {host_of(client, job) for job in squares} == {"squarer"}
    assert {host_of(client, job) for job in greets} == {"greeter"}
    assert [client.get(job).result for job in greets] == ["hi ann", "hi bob", "hi cy", "hi di"]
    history.check(cluster, jobs)


# -- unroutable jobs wait and are counted (section 6, stats) --------------------------------------


def test_jobs_no_worker_may_take_wait_counted_in_stats_until_an_eligible_worker_joins(
    make_cluster, history
):
    cluster = make_cluster(1, seed=49, concurrency=2)  # handles square, sleep and boom only
    client = cluster.client()
    resizes = [client.enqueue("resize", [f"{n}.png"]) for n in range(2)]
    lonely = client.enqueue("square", [2], queue="lonely")
    labelled = cluster.add_worker(
        "eu-only", concurrency=1, labels={"region": ["eu"]}, queues=("labelled",)
    )
    assert labelled is not None
    unrouted = client.enqueue("square", [3], queue="labelled")  # no region in its route

    expected = {"default": 2, "labelled": 1, "lonely": 1}
    cluster.run_until(lambda: client.stats()["unroutable"] == expected, within=10)
    cluster.advance(120)
    assert client.stats()["unroutable"] == expected
    assert [stored(cluster, job)["state"] for job in [*resizes, lonely, unrouted]] == [
        "available"
    ] * 4

    cluster.add_worker(
        "resizer", handlers={"resize": history.wrap(lambda path: path.upper())}, concurrency=1
    )
    cluster.run_until(
        lambda: all(stored(cluster, job)["state"] == "completed" for job in resizes), within=60
    )
    assert [client.get(job).result for job in resizes] == ["0.PNG", "1.PNG"]
    assert client.stats()["unroutable"] == {"labelled": 1, "lonely": 1}
    history.check(cluster, resizes)


# -- the Python API: per-type handler defaults ----------------------------------------------------


def typed_worker(cluster: Cluster, name: str, register: Callable[[WorkerNode], None]) -> None:
    """A worker node built like Cluster.add_worker, with handlers registered by decorator."""
    node = WorkerNode(
        COORDINATOR_ADDRESS,
        connector=cluster.network.connector(COORDINATOR_ADDRESS, node=name),
        clock=cluster.clock,
        rng=random.Random(7),
        activity=cluster.activity,
        pump=cluster.step,
        hostname=name,
        queues=("default",),
        concurrency=1,
    )
    register(node)
    cluster.workers[name] = node.start()


def test_handler_defaults_apply_when_the_handler_is_enqueued_and_options_override_them(
    make_cluster,
):
    cluster = make_cluster(0, seed=50)
    client = cluster.client()
    handlers: dict[str, Any] = {}

    def register(node: WorkerNode) -> None:
        @node.handler("report", queue="reports", max_attempts=5, timeout=45, priority=3)
        def report(day: str) -> str:
            return f"report for {day}"

        @node.handler("flaky", max_attempts=2, retry={"initial_interval": 1.0})
        def flaky() -> None:
            raise RuntimeError("always")

        handlers.update(report=report, flaky=flaky)

    typed_worker(cluster, "typed", register)
    report, flaky = handlers["report"], handlers["flaky"]

    handle = client.enqueue(report, ["monday"])
    assert handle.result(timeout=60) == "report for monday"  # the worker consumes "reports"
    job = client.get(handle).raw
    assert (job["queue"], job["max_attempts"], job["timeout"], job["priority"]) == (
        "reports",
        5,
        45,
        3,
    )
    [worker] = client.stats()["workers"]
    assert worker["queues"] == ["default", "reports"]
    assert worker["functions"] == ["flaky", "report"]

    override = client.enqueue(report, ["tuesday"], queue="default", max_attempts=1)
    assert override.result(timeout=60) == "report for tuesday"
    job = client.get(override).raw
    assert (job["queue"], job["max_attempts"], job["timeout"]) == ("default", 1, 45)

    failing = client.enqueue(flaky)
    with pytest.raises(JobFailed):
        failing.result(timeout=60)
    assert client.get(failing).attempt == 2  # max_attempts from the handler's defaults
