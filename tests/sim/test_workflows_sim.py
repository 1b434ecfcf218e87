"""Workflows in simulation (docs/PROTOCOL.md, "Workflows"): a chain passes each result on, a
group's callback gets every result, no step starts before its parents completed, a failed
step's dependents end as the policy says, a cancelled workflow stops, and deferred steps
outlive a coordinator restart over SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.store.sqlite import SqliteStore
from nodes import chain, group, step
from tests.sim.step_order import StepOrder
from transport.errors import BadRequest

HANDLERS = {
    "add": lambda *numbers: sum(n if isinstance(n, int) else sum(n) for n in numbers),
    "square": lambda x: x * x,
    "boom": lambda *_: 1 / 0,
    "echo": lambda *args: list(args),
    "sleep": None,  # the cluster's default sleep handler
}


def handlers():
    from actors.worker import current_job

    return {
        **{k: v for k, v in HANDLERS.items() if v is not None},
        "sleep": lambda seconds, *_: current_job().sleep(seconds),  # type: ignore[union-attr]
    }


def ended(client, job_ids) -> bool:
    return all(client.get(j).state in ("completed", "discarded", "cancelled") for j in job_ids)


def test_a_chain_of_groups_passes_every_result_on_in_order(make_cluster, history):
    cluster = make_cluster(3, seed=11, concurrency=2, handlers=handlers())
    order = StepOrder()
    cluster.events.subscribe(order.observe)
    client = cluster.client()
    made = client.enqueue_workflow(
        chain(
            step("add", [1, 2]),  # 3
            group(step("square"), step("add", [10]), callback=step("add")),  # 9, 13 -> 22
            step("square"),  # 484
        )
    )
    job_ids = made["job_ids"]
    assert made["states"] == ["available", "deferred", "deferred", "deferred", "deferred"]
    cluster.run_until(lambda: ended(client, job_ids))
    results = [client.get(j).result for j in job_ids]
    assert results == [3, 9, 13, 22, 484]
    assert client.get(job_ids[3]).raw["args"] == [[9, 13]]  # the callback: every result, in order
    view = client.workflow(made["workflow_id"])
    assert view["state"] == "completed" and view["total"] == 5
    assert [s["after"] for s in view["steps"]] == [[], [0], [0], [1, 2], [3]]
    order.check(client, job_ids)
    history.check(cluster, job_ids)


def test_a_discarded_step_cancels_what_comes_after_it_by_default(make_cluster, history):
    cluster = make_cluster(2, seed=12, handlers=handlers())
    client = cluster.client()
    made = client.enqueue_workflow(
        chain(step("boom", max_attempts=1), group(step("square", [2]), step("add", [1])))
    )
    job_ids = made["job_ids"]
    cluster.run_until(lambda: ended(client, job_ids))
    assert [client.get(j).state for j in job_ids] == ["discarded", "cancelled", "cancelled"]
    assert client.get(job_ids[1]).errors[-1]["type"] == "parent_failed"
    assert client.workflow(made["workflow_id"])["state"] == "failed"
    history.check(cluster, job_ids)


def test_on_failure_continue_runs_the_dependents_with_no_result(make_cluster, history):
    cluster = make_cluster(2, seed=13, handlers=handlers())
    client = cluster.client()
    made = client.enqueue_workflow(
        group(step("boom", max_attempts=1), step("square", [3]), callback=step("echo")),
        on_failure="continue",
    )
    job_ids = made["job_ids"]
    cluster.run_until(lambda: ended(client, job_ids))
    callback = client.get(job_ids[2])
    assert callback.state == "completed" and callback.result == [[None, 9]]


def test_a_cancelled_workflow_stops_its_running_and_waiting_steps(make_cluster, history):
    cluster = make_cluster(1, seed=14, handlers=handlers())
    client = cluster.client()
    made = client.enqueue_workflow(chain(step("sleep", [600]), step("square", [2])))
    first = made["job_ids"][0]
    cluster.run_until(lambda: client.get(first).state == "active")
    assert client.cancel_workflow(made["workflow_id"]) == 2
    cluster.run_until(lambda: ended(client, made["job_ids"]))
    assert [client.get(j).state for j in made["job_ids"]] == ["cancelled", "cancelled"]
    assert client.workflow(made["workflow_id"])["state"] == "cancelled"
    history.check(cluster, made["job_ids"])


def test_a_job_may_depend_on_jobs_enqueued_before_it(make_cluster, history):
    cluster = make_cluster(2, seed=15, handlers=handlers())
    client = cluster.client()
    first = str(client.enqueue("square", [4]))
    cluster.run_until(lambda: client.get(first).state == "completed")
    later = str(client.enqueue("add", [1], depends_on=[first]))  # its parent completed already
    cluster.run_until(lambda: client.get(later).state == "completed")
    assert client.get(later).result == 17
    history.check(cluster, [first, later])


def test_deferred_steps_outlive_a_restart_over_sqlite(make_cluster, history, tmp_path: Path):
    path = str(tmp_path / "corral.db")
    store = SqliteStore(path)
    cluster = make_cluster(1, seed=16, concurrency=1, store=store, handlers=handlers())
    store.track(cluster.activity)
    client = cluster.client()
    made = client.enqueue_workflow(
        chain(step("sleep", [30]), step("square", [5], pass_results=False))
    )
    first, second = made["job_ids"]
    cluster.run_until(lambda: client.get(first).state == "active")
    cluster.kill_coordinator()
    cluster.restart_coordinator(store=SqliteStore(path, activity=cluster.activity))
    assert client.get(second).state == "deferred"
    cluster.run_until(lambda: ended(client, made["job_ids"]), within=600)
    assert client.get(second).result == 25
    assert client.workflow(made["workflow_id"])["state"] == "completed"
    history.check(cluster, made["job_ids"])


def test_results_too_large_to_pass_on_cancel_the_step_that_would_take_them(make_cluster):
    big = {**handlers(), "big": lambda: "x" * 300_000}  # each under max_result_size, not both
    cluster = make_cluster(2, seed=17, handlers=big)
    client = cluster.client()
    made = client.enqueue_workflow(group(step("big"), step("big"), callback=step("echo")))
    cluster.run_until(lambda: ended(client, made["job_ids"]))
    callback = client.get(made["job_ids"][2])
    assert callback.state == "cancelled" and callback.errors[-1]["type"] == "too_large"


def test_a_released_step_whose_time_has_not_come_waits_scheduled(make_cluster):
    cluster = make_cluster(1, seed=18, handlers=handlers())
    client = cluster.client()
    later = cluster.clock.now() + 300
    made = client.enqueue_workflow(chain(step("square", [2]), step("square", scheduled_at=later)))
    first, second = made["job_ids"]
    cluster.run_until(lambda: client.get(second).state == "scheduled")
    assert client.get(first).state == "completed"
    cluster.run_until(lambda: client.get(second).state == "completed", within=600)
    assert client.get(second).raw["started_at"] >= later


def test_a_deferred_job_is_cancelled_like_any_job_and_its_dependents_follow(make_cluster):
    cluster = make_cluster(1, seed=19, handlers=handlers())
    client = cluster.client()
    made = client.enqueue_workflow(chain(step("sleep", [60]), step("square"), step("square")))
    _, second, third = made["job_ids"]
    assert client.cancel(second) == "cancelled"
    cluster.run_until(lambda: ended(client, made["job_ids"]))
    assert [client.get(j).state for j in made["job_ids"]] == ["completed", "cancelled", "cancelled"]
    assert client.get(third).errors[-1]["type"] == "parent_failed"


def test_a_job_may_not_wait_for_an_unknown_job_and_a_resent_workflow_makes_nothing_new(
    make_cluster,
):
    cluster = make_cluster(1, seed=20, handlers=handlers())
    client = cluster.client()
    with pytest.raises(BadRequest, match="depends_on: no job nope"):
        client.enqueue("square", [1], depends_on=["nope"])
    tree = chain(step("square", [3]), step("square"))
    made = client.enqueue_workflow(tree, request_id="nightly-42")
    again = client.enqueue_workflow(tree, request_id="nightly-42")
    assert again["workflow_id"] == made["workflow_id"] == "nightly-42"
    assert again["job_ids"] == made["job_ids"] and again["replayed"] is True
    cluster.run_until(lambda: ended(client, made["job_ids"]))
    assert client.get(made["job_ids"][1]).result == 81


def test_a_workflow_goes_on_after_its_leader_dies_and_a_standby_takes_over(make_cluster, history):
    cluster = make_cluster(
        2, seed=21, concurrency=1, coordinators=2, failover_timeout=3.0, handlers=handlers()
    )
    client = cluster.client()
    first_leader = cluster.leader()
    made = client.enqueue_workflow(
        chain(step("sleep", [20]), group(step("square", [3], pass_results=False)), step("square"))
    )
    head = made["job_ids"][0]
    cluster.run_until(lambda: client.get(head).state == "active")
    cluster.kill_coordinator(first_leader.bind)
    cluster.run_until(lambda: cluster.leader() not in (None, first_leader), within=60)
    cluster.run_until(lambda: ended(client, made["job_ids"]), within=600)
    assert [client.get(j).result for j in made["job_ids"][1:]] == [9, 81]
    assert client.workflow(made["workflow_id"])["state"] == "completed"
    history.check(cluster, made["job_ids"])
