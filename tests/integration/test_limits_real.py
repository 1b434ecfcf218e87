"""Limits per key over real sockets and worker processes: a concurrency limit holds however
many workers have room, a SIGKILLed worker's limited job frees its slot as soon as it is
recovered, and a rate limit paces starts across workers (docs/PROTOCOL.md, "Limits")."""

from __future__ import annotations

import signal

from actors.limits import LimitRule
from tests.conftest import wait_for
from tests.integration.real_cluster import (
    FAST,
    HEARTBEAT_TIMEOUT_S,
    RECOVERY_MARGIN_S,
    all_in,
    registered,
    start_worker,
)

CUSTOMER = {"concurrency_key": "customer-1"}


def test_a_limit_holds_across_worker_processes_and_a_killed_holder_frees_its_slot(
    coordinator, spawn, clients, tmp_path
):
    # Given two worker processes with two slots each, and `hold` jobs limited to one at a time
    # per customer
    node = coordinator(**FAST, job_limits=[LimitRule(job_type="hold", concurrency=1)])
    client = clients(node.address)
    first = start_worker(spawn, node.address, "worker-a")
    second = start_worker(spawn, node.address, "worker-b")
    processes = {registered(client, first): first, registered(client, second): second}
    release = tmp_path / "release"
    marks = [tmp_path / f"started-{n}" for n in range(3)]

    def hold(n: int, key: str) -> dict:
        args = [str(release), str(marks[n])]
        return {"type": "hold", "args": args, "concurrency_key": key}

    # When a customer enqueues two jobs and another customer one
    jobs = [
        str(job)
        for job in client.enqueue_many(
            [hold(0, "customer-1"), hold(1, "customer-1"), hold(2, "customer-2")]
        )
    ]
    wait_for(lambda: marks[0].exists() and marks[2].exists(), timeout=10, what="two running")

    # Then the second job of the first customer waits, counted as limited, though three slots
    # are free on the two workers, and the other customer's job was not blocked behind it
    assert client.get(jobs[1]).state == "available" and not marks[1].exists()
    assert client.stats()["limited"] == {"default": 1}

    # When the worker running the first customer's job is SIGKILLed
    holder = client.get(jobs[0]).raw["worker_id"]
    victim = processes[holder]
    victim.signal(signal.SIGKILL)
    victim.wait()

    # Then, once it is recovered, the slot is free at once: one of the customer's jobs runs on
    # the survivor and the other still waits
    def one_running_again() -> bool:
        return sorted(client.get(job).state for job in jobs[:2]) == ["active", "available"]

    wait_for(
        lambda: client.get(jobs[0]).attempt == 1 and one_running_again(),
        timeout=HEARTBEAT_TIMEOUT_S + RECOVERY_MARGIN_S + 5,
        what="the killed worker's slot given to the customer's next job",
    )
    assert client.stats()["limited"] == {"default": 1}

    # And once released, everything completes, the customer's jobs one after the other
    release.touch()
    wait_for(lambda: all_in(client, jobs, "completed"), timeout=15, what="all completed")
    first_done, second_done = sorted(
        (client.get(job).raw for job in jobs[:2]), key=lambda raw: raw["started_at"]
    )
    assert first_done["completed_at"] <= second_done["started_at"]
    assert client.stats()["limited"] == {}


def test_a_rate_limit_paces_starts_across_workers(coordinator, workers, clients):
    node = coordinator(**FAST)
    client = clients(node.address)
    for _ in range(2):
        workers(node.address, handlers={"tick": lambda: None}, concurrency=4)
    rate = {"count": 2, "per": 1.0}
    handles = client.enqueue_many(
        [{"type": "tick", "rate_limit": rate, **CUSTOMER} for _ in range(6)]
    )
    for handle in handles:
        handle.result(timeout=15)
    starts = sorted(client.get(str(handle)).raw["started_at"] for handle in handles)
    # A token bucket of two, refilled at two a second: two at once, then one every half second
    level, at = 2.0, starts[0]
    for started in starts:
        level = min(2.0, level + (started - at) * 2.0) - 1
        at = started
        assert level >= -1e-6, f"started past the rate: {starts}"
    assert starts[-1] - starts[0] >= 1.9, starts  # four tokens had to come with time
