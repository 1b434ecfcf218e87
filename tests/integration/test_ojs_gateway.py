"""The OJS gateway as a user runs it: `corral run` of a YAML with a gateway node and bearer
tokens, HTTP workers that get corral's guarantees (a silent worker's job is recovered and its
late ack refused, directives arrive on heartbeats, a restarted coordinator's jobs are resumed),
a producer and a worker of either protocol sharing one queue, and a gateway following the
leader of two coordinators through a failover. Real HTTP (httpx), real
ZeroMQ over loopback, real processes for `corral run`."""

from __future__ import annotations

import secrets
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nodes import Coordinator
from nodes.gateway.node import Gateway
from tests.conftest import wait_for
from tests.integration.conftest import cli, free_port
from tests.integration.ha_cluster import Pair

JSON = {"Content-Type": "application/openjobspec+json"}


@pytest.fixture
def gateways() -> Iterator[Callable[..., Gateway]]:
    started: list[Gateway] = []

    def start(connect: str, **options: Any) -> Gateway:
        gateway = Gateway(connect, bind="127.0.0.1:0", **options)
        gateway.start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


def http(gateway: Gateway, token: str | None = None) -> httpx.Client:
    headers = {**JSON, **({"Authorization": f"Bearer {token}"} if token else {})}
    return httpx.Client(base_url=gateway.url, headers=headers, timeout=10.0)


def enqueue(client: httpx.Client, queue: str = "q", **options: Any) -> str:
    reply = client.post("/ojs/v1/jobs", json={"type": "t.job", "args": [1],
                                              "options": {"queue": queue, **options}})  # fmt: skip
    assert reply.status_code == 201, reply.text
    return reply.json()["job"]["id"]


def fetch(client: httpx.Client, worker: str, queue: str = "q") -> list[dict[str, Any]]:
    reply = client.post("/ojs/v1/workers/fetch", json={"queues": [queue], "worker_id": worker})
    assert reply.status_code == 200, reply.text
    return reply.json()["jobs"]


def test_corral_run_serves_the_binding_behind_bearer_tokens_with_roles(
    tmp_path: Path, spawn: Any
) -> None:
    tokens = {role: secrets.token_urlsafe(24) for role in ("producer", "worker")}
    for role, token in tokens.items():
        (tmp_path / f"{role}.token").write_text(token + "\n")
    zmq_port, http_port = free_port(), free_port()
    config = tmp_path / "cluster.yaml"
    config.write_text(
        f"""nodes:
  coordinator:
    kind: coordinator
    bind: tcp://127.0.0.1:{zmq_port}
  gateway:
    kind: gateway
    connect: tcp://127.0.0.1:{zmq_port}
    bind: 127.0.0.1:{http_port}
    tokens:
      - {{token_file: producer.token, roles: [client]}}
      - {{token_file: worker.token, roles: [worker]}}
"""
    )
    runner = spawn("corral run", *cli("run", str(config)))
    runner.wait_for_line(r"OJS gateway on http://127\.0\.0\.1:\d+")
    base = f"http://127.0.0.1:{http_port}"
    with httpx.Client(base_url=base, headers=JSON, timeout=10.0) as anonymous:
        assert anonymous.get("/ojs/manifest").status_code == 200  # open: discovery
        assert anonymous.get("/ojs/v1/health").json()["status"] == "ok"
        refused = anonymous.post("/ojs/v1/jobs", json={"type": "a", "args": []})
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"]
        assert refused.json()["error"]["code"] == "unauthorized"
        bad = anonymous.post("/ojs/v1/jobs", json={"type": "a", "args": []},
                             headers={"Authorization": "Bearer not-a-token"})  # fmt: skip
        assert bad.status_code == 401
    producer = httpx.Client(base_url=base, timeout=10.0, headers={
        **JSON, "Authorization": f"Bearer {tokens['producer']}"})  # fmt: skip
    worker = httpx.Client(base_url=base, timeout=10.0, headers={
        **JSON, "Authorization": f"Bearer {tokens['worker']}"})  # fmt: skip
    with producer, worker:
        job_id = enqueue(producer)
        forbidden = worker.post("/ojs/v1/jobs", json={"type": "a", "args": []})
        assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden"
        assert producer.post("/ojs/v1/workers/fetch", json={"queues": ["q"]}).status_code == 403
        [job] = fetch(worker, "w1")
        assert job["id"] == job_id and job["state"] == "active"
        done = worker.post("/ojs/v1/workers/ack", json={"job_id": job_id, "result": {"n": 2}})
        assert done.json()["state"] == "completed"
        assert producer.get(f"/ojs/v1/jobs/{job_id}").json()["job"]["result"] == {"n": 2}


def test_a_silent_http_worker_loses_its_job_to_another_and_its_late_ack_is_refused(
    coordinator: Callable[..., Coordinator], gateways: Callable[..., Gateway]
) -> None:
    node = coordinator(heartbeat_timeout=1.0, heartbeat_interval=0.2)
    gateway = gateways(node.address)
    with http(gateway) as client:
        job_id = enqueue(client)
        assert fetch(client, "silent")[0]["id"] == job_id
        # `silent` never beats: its session dies after heartbeat_timeout, its job comes back
        taken = wait_for(lambda: fetch(client, "alive"), timeout=10.0, what="job recovered")
        assert taken[0]["id"] == job_id and taken[0]["attempt"] == 2
        assert taken[0]["errors"][0]["code"] == "worker_lost"
        late = client.post("/ojs/v1/workers/ack", json={"job_id": job_id, "worker_id": "silent"})
        assert late.status_code == 409
        ack = client.post("/ojs/v1/workers/ack", json={"job_id": job_id, "worker_id": "alive"})
        assert ack.status_code == 200 and ack.json()["state"] == "completed"


def test_a_directive_from_an_operator_arrives_on_the_http_workers_heartbeat(
    coordinator: Callable[..., Coordinator],
    gateways: Callable[..., Gateway],
    clients: Callable[..., Any],
) -> None:
    node = coordinator()
    gateway = gateways(node.address)
    operator = clients(node.address)
    with http(gateway) as client:
        job_id = enqueue(client)
        fetch(client, "w-quiet")
        beat = client.post("/ojs/v1/workers/heartbeat", json={"worker_id": "w-quiet"})
        assert beat.json()["state"] == "running" and beat.json()["jobs_extended"] == [job_id]
        [session] = [w for w in operator.stats()["workers"] if w.get("name") == "http:w-quiet"]
        operator.direct(session["worker_id"], "quiet")
        beat = client.post("/ojs/v1/workers/heartbeat", json={"worker_id": "w-quiet"})
        assert beat.json()["state"] == "quiet"
        enqueue(client)
        assert fetch(client, "w-quiet") == []  # quiet: no new job for it


def test_an_http_worker_keeps_its_job_across_a_coordinator_restart(
    tmp_path: Path, gateways: Callable[..., Gateway]
) -> None:
    port = free_port()
    store = f"sqlite:///{tmp_path / 'corral.db'}"

    def start() -> Coordinator:
        node = Coordinator(bind=f"tcp://127.0.0.1:{port}", store=store, heartbeat_timeout=10.0)
        node.start()
        return node

    node = start()
    try:
        gateway = gateways(node.address)
        with http(gateway) as client:
            job_id = enqueue(client)
            fetch(client, "steady")
            node.stop()
            node = start()
            # the gateway opens a new session for `steady` and resumes the job it holds
            ack = client.post("/ojs/v1/workers/ack", json={"job_id": job_id})
            assert ack.status_code == 200, ack.text
            assert ack.json()["job"]["attempt"] == 1 and ack.json()["state"] == "completed"
    finally:
        node.stop()


def test_zeromq_and_http_producers_and_workers_share_a_queue(
    coordinator: Callable[..., Coordinator],
    gateways: Callable[..., Gateway],
    clients: Callable[..., Any],
) -> None:
    node = coordinator()
    gateway = gateways(node.address)
    client = clients(node.address)
    with http(gateway) as web:
        from_zmq = client.enqueue("t.job", [2], queue="mixed").id
        [job] = fetch(web, "http-worker", queue="mixed")
        assert job["id"] == from_zmq and job["args"] == [2]
        web.post("/ojs/v1/workers/ack", json={"job_id": from_zmq, "result": 4})
        assert client.get(from_zmq, wait=5.0).result == 4
        from_http = enqueue(web, queue="mixed")
        assert client.get(from_http).type == "t.job"
        assert client.cancel(from_http) == "cancelled"
        assert web.get(f"/ojs/v1/jobs/{from_http}").json()["job"]["state"] == "cancelled"


@pytest.mark.slow  # the suite's five minutes: run in the slow tier (README)
def test_the_gateway_follows_the_leader_and_its_http_worker_keeps_its_job_across_a_failover(
    spawn: Any, postgres: Any, tmp_path: Path, gateways: Callable[..., Gateway]
) -> None:
    """Two coordinators on one PostgreSQL database; the gateway lists both. The leader is
    SIGKILLed while an HTTP worker holds a job: the worker's ack reaches the new leader, which
    resumes the job on the worker's new session (attempt 1, no error), and enqueues go on."""
    pair = Pair(spawn, tmp_path, postgres.database(), heartbeat_timeout=5.0)
    first, _ = pair.leader()
    gateway = gateways(list(pair.addresses.values()))
    with http(gateway) as client:
        job_id = enqueue(client)
        assert fetch(client, "survivor")[0]["id"] == job_id
        pair.failover(first, signal.SIGKILL)
        ack = client.post("/ojs/v1/workers/ack", json={"job_id": job_id, "result": "done"})
        assert ack.status_code == 200, ack.text
        job = client.get(f"/ojs/v1/jobs/{job_id}").json()["job"]
        assert (job["state"], job["attempt"], job.get("errors")) == ("completed", 1, None)
        assert job["result"] == "done"
        assert client.get(f"/ojs/v1/jobs/{enqueue(client)}").status_code == 200


def test_http_workers_are_bounded_and_a_silent_one_gives_its_place_back(
    coordinator: Callable[..., Coordinator], gateways: Callable[..., Gateway]
) -> None:
    """Each HTTP worker holds a connection to each coordinator: at most max_http_workers at
    once (503 beyond), and one silent past the coordinator's heartbeat_timeout (its session is
    dead) makes room for a new one."""
    node = coordinator(heartbeat_timeout=1.0, heartbeat_interval=0.2)
    gateway = gateways(node.address, max_http_workers=2)
    with http(gateway) as client:
        assert fetch(client, "first") == [] and fetch(client, "second") == []
        full = client.post("/ojs/v1/workers/fetch", json={"queues": ["q"], "worker_id": "third"})
        assert full.status_code == 503 and full.json()["error"]["retryable"] is True
        assert fetch(client, "second") == []  # one already known is served
        wait_for(lambda: client.post("/ojs/v1/workers/fetch", json={
            "queues": ["q"], "worker_id": "third"}).status_code == 200,
            timeout=10.0, what="a silent worker's place given back")  # fmt: skip
