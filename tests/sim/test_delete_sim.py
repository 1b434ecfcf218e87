"""The `delete` request (docs/PROTOCOL.md, extension "Delete") through the real actors on the
simulated network: an ended job is forgotten for good (a second delete, a `get`, a resend of
its enqueue all find no job), a job that has not ended is refused with its state, and nothing
that heard of the job's end is disturbed: a parked `get {wait}`, a deferred workflow step
waiting for other parents, a standby taking over."""

from __future__ import annotations

import pytest

from nodes import chain, group, step
from transport import codec
from transport.errors import BadRequest, UnknownJob


def ended(client, job_id: str):
    return lambda: client.get(job_id).terminal


def test_an_ended_job_is_deleted_for_good(make_cluster, history):
    cluster = make_cluster(1, seed=1)
    client = cluster.client()
    job = str(client.enqueue("square", [3], request_id="req-1"))
    kept = str(client.enqueue("square", [4]))
    cluster.run_until(lambda: client.get(job).terminal and client.get(kept).terminal)
    history.check(cluster, [job, kept])

    assert client.delete(job) is None
    with pytest.raises(UnknownJob):
        client.get(job)
    with pytest.raises(UnknownJob, match=f"no job {job}"):
        client.delete(job)  # a second delete
    assert client.stats()["queues"]["default"]["completed"] == 1
    assert [j.id for j in client.jobs()] == [kept]
    again = str(client.enqueue("square", [3], request_id="req-1"))  # a resend: no replay now
    assert again != job
    cluster.run_until(ended(client, again))
    assert client.get(again).result == 9


def test_a_job_that_has_not_ended_is_refused_with_its_state_and_can_go_once_cancelled(
    make_cluster,
):
    cluster = make_cluster(1, seed=2, concurrency=1)
    client = cluster.client()
    running = str(client.enqueue("sleep", [50]))
    waiting = str(client.enqueue("square", [2]))
    cluster.run_until(lambda: client.get(running).state == "active")
    for job, state in ((running, "active"), (waiting, "available")):
        says = f"job {job} is {state}: only an ended job can be deleted \\(cancel it first\\)"
        with pytest.raises(BadRequest, match=says):
            client.delete(job)
    assert client.get(waiting).state == "available"

    assert client.cancel(waiting) == "cancelled"
    client.delete(waiting)
    cluster.run_until(ended(client, running))
    client.delete(running)
    assert sum(client.stats()["queues"]["default"].values()) == 0


def test_a_get_parked_on_a_job_is_answered_as_it_ends_and_its_delete_changes_nothing_after(
    make_cluster, raw_worker
):
    cluster = make_cluster(1, seed=3, concurrency=1)
    client = cluster.client()
    job = str(client.enqueue("sleep", [20]))
    peer = raw_worker(cluster, "waiter")
    peer.link.send(codec.encode({"type": "get", "rid": 7, "job_id": job, "wait": 600}))
    cluster.run_until(ended(client, job))
    cluster.run_until(lambda: 7 in peer.replies, within=60)
    assert peer.replies.pop(7)["job"]["state"] == "completed"

    client.delete(job)
    cluster.advance(700)  # past the parked get's wait: nothing more for it
    assert peer.replies == {}
    answer = peer.request("get", job_id=job, wait=5)  # a new one finds no job at once
    assert (answer["type"], answer["code"]) == ("error", "unknown_job")


def test_a_deferred_step_whose_ended_parent_is_deleted_still_runs_with_its_result(
    make_cluster, history
):
    cluster = make_cluster(2, seed=4, concurrency=1)
    client = cluster.client()
    flow = client.enqueue_workflow(
        chain(group(step("square", [3]), step("sleep", [30])), step("total"))
    )["job_ids"]
    square, sleep, total = flow
    cluster.run_until(ended(client, square))
    assert client.get(total).state == "deferred"  # still waits for the sleep
    client.delete(square)
    cluster.run_until(ended(client, total))
    assert (client.get(total).state, client.get(total).result) == ("completed", 9)
    history.check(cluster, [sleep, total])


def test_a_deleted_job_stays_deleted_after_a_failover(make_cluster):
    cluster = make_cluster(1, seed=5, coordinators=2, failover_timeout=3.0)
    client = cluster.client()
    jobs = [str(client.enqueue("square", [n])) for n in (1, 2)]
    cluster.run_until(lambda: all(client.get(j).terminal for j in jobs))
    first = cluster.leader()
    client.delete(jobs[0])
    cluster.kill_coordinator(first.bind)
    cluster.run_until(lambda: cluster.leader() not in (None, first), within=60)
    with pytest.raises(UnknownJob):
        client.get(jobs[0])
    assert client.get(jobs[1]).state == "completed"
    assert client.stats()["queues"]["default"]["completed"] == 1
