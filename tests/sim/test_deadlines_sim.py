"""`expires_at` and `run_timeout` in simulation (docs/PROTOCOL.md extensions "Expiry" and "Run
timeout"): a job nobody started in time is discarded unstarted, however it waited (queued
behind a busy worker, already past at enqueue, between retries, behind its workflow parents),
and an attempt that runs past its run timeout is taken from its beating worker as a timeout,
then run again or discarded; over a restart too."""

from __future__ import annotations

from nodes import chain, step
from tests.sim.test_sqlite_restart import db, durable_cluster, open_db

__all__ = ["db"]  # the fixture: a SQLite file, or a PostgreSQL database


def ended(client, job_ids) -> bool:
    return all(client.get(j).state in ("completed", "discarded", "cancelled") for j in job_ids)


def started(history, job_id) -> list[int]:
    """The attempts of the job a handler started."""
    return [attempt for _, started_id, attempt in history.starts if started_id == job_id]


def test_jobs_nobody_started_in_time_are_discarded_unstarted_and_the_rest_run(
    make_cluster, history
):
    cluster = make_cluster(1, seed=21, concurrency=1)
    client = cluster.client()
    now = cluster.clock.now()
    busy = client.enqueue("sleep", [30])  # the only worker's only slot, for 30 s
    cluster.run_until(lambda: client.get(busy).state == "active")
    late = client.enqueue("square", [3], expires_at=now + 10)  # waits behind it: too long
    fine = client.enqueue("square", [4], expires_at=now + 100)
    past = client.request("enqueue", job={"type": "square", "args": [5], "expires_at": now - 1})
    assert past["state"] == "available"  # accepted as any job is ...
    cluster.settle()
    assert client.get(past["job_id"]).state == "discarded"  # ... and discarded at once
    cluster.run_until(lambda: client.get(late).state == "discarded", within=20)
    assert cluster.clock.now() - now <= 10 + cluster.settings.reaper_interval
    assert client.get(busy).state == "active"  # the worker never saw it

    job_ids = [busy, late, fine, past["job_id"]]
    cluster.run_until(lambda: ended(client, job_ids), within=120)
    assert [client.get(j).state for j in job_ids] == [
        "completed", "discarded", "completed", "discarded"
    ]  # fmt: skip
    assert client.get(fine).result == 16
    for job_id, expires_at in ((late, now + 10), (past["job_id"], now - 1)):
        job = client.get(job_id)
        assert job.attempt == 0 and started(history, job_id) == []
        assert [(e["type"], e["message"]) for e in job.errors] == [
            ("expired", f"expired unstarted at {expires_at}")
        ]
    assert client.stats()["queues"]["default"]["discarded"] == 2
    history.check(cluster, job_ids)


def test_a_job_failing_until_it_expires_is_not_tried_again(make_cluster, history):
    cluster = make_cluster(2, seed=22)
    client = cluster.client()
    now = cluster.clock.now()
    retry = {"initial_interval": 10.0, "jitter": False}
    job = client.enqueue("boom", max_attempts=10, retry=retry, expires_at=now + 15)
    cluster.run_until(lambda: client.get(job).state == "discarded", within=60)
    # attempt 1 at once, attempt 2 after 10 s; attempt 3 would start after 20 more: too late
    assert started(history, job) == [1, 2]
    errors = client.get(job).errors
    assert [e["type"] for e in errors] == ["ZeroDivisionError", "ZeroDivisionError", "expired"]
    assert errors[-1]["message"] == f"expired at {now + 15} before attempt 3 started"
    assert errors[-1]["at"] <= now + 15 + cluster.settings.reaper_interval
    history.check(cluster, [job])


def test_a_workflow_step_whose_parents_ended_too_late_is_discarded_and_its_dependents_cancelled(
    make_cluster, history
):
    cluster = make_cluster(2, seed=23)
    client = cluster.client()
    now = cluster.clock.now()
    made = client.enqueue_workflow(
        chain(step("sleep", [20]), step("square", [2], expires_at=now + 10), step("square", [3]))
    )
    job_ids = made["job_ids"]
    cluster.run_until(lambda: ended(client, job_ids), within=120)
    assert [client.get(j).state for j in job_ids] == ["completed", "discarded", "cancelled"]
    assert client.get(job_ids[1]).errors[-1]["type"] == "expired"
    assert client.get(job_ids[2]).errors[-1]["type"] == "parent_failed"
    assert started(history, job_ids[1]) == started(history, job_ids[2]) == []
    history.check(cluster, job_ids)


def test_an_attempt_past_its_run_timeout_is_taken_from_its_beating_worker(make_cluster, history):
    cluster = make_cluster(2, seed=24, concurrency=1)  # visibility_timeout 120 s
    client = cluster.client()
    hung = client.enqueue("sleep", [1000], run_timeout=12, max_attempts=2)
    quick = client.enqueue("sleep", [8], run_timeout=12)  # ends within it
    cluster.run_until(lambda: ended(client, [hung, quick]), within=120)

    assert client.get(quick).state == "completed" and client.get(quick).attempt == 1
    job = client.get(hung)
    assert job.state == "discarded" and started(history, hung) == [1, 2]
    assert [e["type"] for e in job.errors] == ["timeout", "timeout"]
    assert all("run timeout of 12.0 s passed" in e["message"] for e in job.errors)
    first, second = (e["at"] for e in job.errors)
    # each attempt ran its 12 s (the beats every 5 s renewed nothing past it), found by the
    # next reaper round; the second began at once on the other, idle worker
    assert 12 <= first - job.raw["created_at"] <= 12 + 2 * cluster.settings.reaper_interval
    assert 12 <= second - first <= 12 + 2 * cluster.settings.reaper_interval
    assert [reason for job_id, reason in history.recoveries if job_id == hung] == [
        "timeout", "timeout"
    ]  # fmt: skip
    history.check(cluster, [hung, quick])


def test_a_restart_discards_what_expired_while_down_and_ends_an_attempt_that_ran_out(
    make_cluster, history, db
):
    cluster = durable_cluster(make_cluster, db, workers=1, seed=25)
    client = cluster.client()
    now = cluster.clock.now()
    hung = client.enqueue("sleep", [1000], run_timeout=30, max_attempts=1)
    cluster.run_until(lambda: client.get(hung).state == "active")
    late = client.enqueue("square", [2], expires_at=now + 20)  # behind it, on the only slot
    fine = client.enqueue("square", [3], expires_at=now + 1000)

    cluster.kill_coordinator()
    cluster.advance(60)  # nobody serves: late expires, hung runs past its 30 s
    cluster.restart_coordinator(store=open_db(db, activity=cluster.activity))
    restarted = cluster.clock.now()
    assert client.get(late).state == "discarded"  # as its queue got its jobs back
    assert client.get(late).errors[-1]["at"] == restarted

    job_ids = [hung, late, fine]
    cluster.run_until(lambda: ended(client, job_ids), within=120)
    assert [client.get(j).state for j in job_ids] == ["discarded", "discarded", "completed"]
    [error] = client.get(hung).errors
    assert error["type"] == "timeout" and "run timeout of 30.0 s passed" in error["message"]
    assert error["at"] <= restarted + 2 * cluster.settings.reaper_interval  # the first rounds
    assert started(history, late) == [] and started(history, fine) == [1]
    history.check(cluster, job_ids)
