"""Enqueue request ids over real ZeroMQ sockets (docs/PROTOCOL.md, Extensions): a request sent
again with the same `request_id` is answered with the job(s) the first one made, also by a
coordinator on SQLite that was SIGKILLed and started again between the two.

Coordinator processes come from tests/integration/node_script.py (real_cluster.py); every wait
is a condition with a deadline and every process is killed at teardown (the `spawn` fixture).
"""

from __future__ import annotations

import signal

from nodes.client import Client
from tests.integration.real_cluster import start_coordinator


def held(client: Client, queue: str) -> int:
    """Jobs the coordinator holds in `queue`, whatever their state."""
    return sum(client.stats()["queues"].get(queue, {}).values())


def test_the_same_request_id_twice_makes_one_job_and_the_second_reply_says_replayed(
    spawn, clients, tmp_path
):
    _, address = start_coordinator(spawn, tmp_path, "coordinator")
    client = clients(address)
    job = {"type": "sleep", "args": [0], "queue": "nobody"}

    first = client.request("enqueue", job=job, request_id="req-1")
    again = client.request("enqueue", job=job, request_id="req-1")

    assert first == {"type": "reply", "rid": first["rid"], "job_id": first["job_id"],
                     "state": "available", "duplicate": False}  # fmt: skip
    assert again == {**first, "rid": again["rid"], "replayed": True}
    assert held(client, "nobody") == 1

    batch = [{"type": "sleep", "queue": "nobody"}] * 3
    made = client.request("enqueue", jobs=batch, request_id="req-b")
    replayed = client.request("enqueue", jobs=batch, request_id="req-b")
    assert replayed["job_ids"] == made["job_ids"] and replayed["replayed"] is True
    assert replayed["states"] == made["states"] == ["available"] * 3
    assert held(client, "nobody") == 4

    # the Client sends a fresh id per call, and the one it is given
    assert client.enqueue("sleep", queue="nobody").id != client.enqueue("sleep", queue="nobody").id
    handle = client.enqueue("sleep", queue="nobody", request_id="req-2")
    assert client.enqueue("sleep", queue="nobody", request_id="req-2").id == handle.id
    assert held(client, "nobody") == 7


def test_a_request_retried_after_a_sqlite_coordinator_was_killed_gets_the_same_job(
    spawn, clients, tmp_path
):
    # Given a coordinator on a SQLite file that acknowledged a job made by request "req-1"
    store = f"sqlite:///{tmp_path / 'corral.db'}"
    first, address = start_coordinator(spawn, tmp_path, "coordinator-1", store=store)
    before = clients(address)
    made = before.request("enqueue", job={"type": "sleep", "queue": "nobody"}, request_id="req-1")

    # When it is SIGKILLed (as if the reply had been lost with it) and started again
    first.signal(signal.SIGKILL)
    first.wait()
    _, again = start_coordinator(spawn, tmp_path, "coordinator-2", bind=address, store=store)
    after = clients(again)

    # Then the retry of the same request is answered with the same job, and there is one job
    retried = after.request("enqueue", job={"type": "sleep", "queue": "nobody"}, request_id="req-1")
    assert retried["job_id"] == made["job_id"] and retried["replayed"] is True
    assert held(after, "nobody") == 1
    assert after.get(made["job_id"]).state == "available"
