"""A workflow across two worker processes, one SIGKILLed midway (docs/PROTOCOL.md,
"Workflows"): the lost step runs again on the survivor, and only then do the steps after it
start, each given the results before it; nothing runs twice, nothing is lost."""

from __future__ import annotations

import signal

from nodes import chain, group, step
from tests.conftest import wait_for
from tests.integration.real_cluster import (
    FAST,
    HEARTBEAT_TIMEOUT_S,
    RECOVERY_MARGIN_S,
    all_in,
    registered,
    start_worker,
)


def test_a_chain_and_a_group_finish_on_the_survivor_of_a_sigkill(
    coordinator, spawn, clients, tmp_path
):
    # Given two worker processes, and a workflow whose first step holds until released
    node = coordinator(**FAST)
    client = clients(node.address)
    first = start_worker(spawn, node.address, "worker-a")
    second = start_worker(spawn, node.address, "worker-b")
    processes = {registered(client, first): first, registered(client, second): second}
    release, started = tmp_path / "release", tmp_path / "started"
    made = client.enqueue_workflow(
        chain(
            step("hold", [str(release), str(started)]),
            group(*(step("gather") for _ in range(4)), callback=step("gather")),
        )
    )
    head, *members, callback = made["job_ids"]
    wait_for(started.exists, timeout=10, what="the first step running")
    assert all_in(client, [*members, callback], "deferred")

    # When the worker running the first step is SIGKILLed
    victim = processes[client.get(head).raw["worker_id"]]
    survivor = second if victim is first else first
    victim.signal(signal.SIGKILL)
    victim.wait()

    # Then the step is recovered and runs again on the survivor, the others still waiting
    wait_for(
        lambda: client.get(head).attempt == 2 and client.get(head).state == "active",
        timeout=HEARTBEAT_TIMEOUT_S + RECOVERY_MARGIN_S + 5,
        what="the first step running again",
    )
    assert all_in(client, [*members, callback], "deferred")

    # And once released, every step completes on the survivor, given what came before it
    release.touch()
    wait_for(
        lambda: all_in(client, made["job_ids"], "completed"), timeout=20, what="all completed"
    )
    done = client.get(head)
    assert done.result == survivor.pid
    assert [e["type"] for e in done.errors] == ["worker_lost"]
    gathered = [client.get(member).result for member in members]
    assert gathered == [{"pid": survivor.pid, "got": [survivor.pid]}] * 4
    assert client.get(callback).result == {"pid": survivor.pid, "got": [gathered]}
    for job_id in [*members, callback]:  # each started after its parents completed
        job = client.get(job_id).raw
        assert job["attempt"] == 1
        for parent in job["depends_on"]:
            assert client.get(parent).raw["completed_at"] <= job["started_at"]
    assert client.workflow(made["workflow_id"])["state"] == "completed"
