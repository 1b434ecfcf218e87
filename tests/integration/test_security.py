"""CURVE, the allow-list and roles over real TCP loopback (PROTOCOL.md section 7, SECURITY.md).

Keys are made with `zmq.auth.create_certificates` in a temporary directory. Peers are bare
DEALERs (`RawPeer` from tests/conftest.py) with the CURVE options of the key they hold, so
every answer is read exactly as it came off the wire. "No reply" is a bounded socket poll.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.auth

from nodes import Client, Coordinator, WorkerNode
from nodes.config import load_config
from nodes.factory import build_node
from tests.conftest import RawPeer, wait_for
from tests.integration.conftest import corral_at_once, free_port
from transport.auth import SecuritySettings, client_curve

KEY_NAMES = ("coordinator", "worker", "worker2", "client", "admin", "stranger")
SILENCE_S = 1.0  # how long a refused peer is watched for a reply that must not come


class CurvePeer(RawPeer):
    """A RawPeer whose DEALER speaks CURVE with `keys` (or plain ZMTP when `keys` is None)."""

    def __init__(self, context: Any, address: str, keys: Path | None, server: Path) -> None:
        self.socket = context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if keys is not None:
            public, secret = zmq.auth.load_certificate(keys)
            self.socket.curve_publickey = public
            self.socket.curve_secretkey = secret
            self.socket.curve_serverkey = zmq.auth.load_certificate(server)[0]
        self.socket.connect(address)
        self._next_rid = 0
        self._unclaimed = []


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    directory.mkdir()
    for name in KEY_NAMES:
        zmq.auth.create_certificates(directory, name)
    return directory


def settings(keys: Path) -> SecuritySettings:
    return SecuritySettings.from_files(
        keys / "coordinator.key_secret",
        [
            (keys / "worker.key", ["worker"]),
            (keys / "worker2.key", ["worker"]),
            (keys / "client.key", ["client"]),
            (keys / "admin.key", ["admin"]),
        ],
    )


@pytest.fixture
def secured(coordinator, keys: Path) -> Coordinator:
    return coordinator(security=settings(keys))


@pytest.fixture
def peer(secured: Coordinator, keys: Path) -> Iterator[Callable[[str | None], CurvePeer]]:
    """`peer("worker")` connects with that key pair; `peer(None)` connects without CURVE."""
    context = zmq.Context()
    peers: list[CurvePeer] = []

    def connect(name: str | None) -> CurvePeer:
        secret = keys / f"{name}.key_secret" if name else None
        made = CurvePeer(context, secured.address, secret, keys / "coordinator.key")
        peers.append(made)
        return made

    yield connect
    for made in peers:
        made.close()
    context.term()


def none_answers(peers: list[CurvePeer], seconds: float) -> bool:
    """True when no frame reaches any of `peers` within `seconds` (one bounded poll of all:
    each is watched for the whole time, at the same time)."""
    poller = zmq.Poller()
    for peer in peers:
        poller.register(peer.socket, zmq.POLLIN)
    return not any(peer._unclaimed for peer in peers) and not poller.poll(int(seconds * 1000))


def ok(answer: dict[str, Any], kind: str = "reply") -> dict[str, Any]:
    assert answer.get("type") == kind, f"expected {kind}, got {answer}"
    return answer


def refused(answer: dict[str, Any], code: str) -> dict[str, Any]:
    assert (answer.get("type"), answer.get("code")) == ("error", code), answer
    return answer


def session(peer: CurvePeer, queues: tuple[str, ...] = ("q",)) -> str:
    worker_id = ok(
        peer.request("hello", v=1, role="worker", hostname="h", pid=1), "workerregistered"
    )["worker_id"]
    ok(peer.request("register", worker_id=worker_id, queues=list(queues), hostname="h", pid=1))
    return worker_id


def enqueue(client: CurvePeer, **spec: Any) -> str:
    return ok(client.request("enqueue", job={"type": "t", "queue": "q", **spec}))["job_id"]


def fetch_one(peer: CurvePeer, worker_id: str) -> dict[str, Any]:
    jobs = ok(peer.request("fetch", timeout=8, worker_id=worker_id, count=1, wait=2))["jobs"]
    assert len(jobs) == 1, jobs
    return jobs[0]


# -- roles ---------------------------------------------------------------------------------------


def test_a_worker_key_runs_a_whole_session_but_is_refused_every_client_request(peer):
    worker, client = peer("worker"), peer("client")
    worker_id = session(worker)
    job_id = enqueue(client)
    job = fetch_one(worker, worker_id)
    assert job["id"] == job_id
    ok(worker.request("beat", worker_id=worker_id, state="running", active_job_ids=[job_id]))
    ok(worker.request("ack", worker_id=worker_id, job_id=job_id, attempt=1, result=7))
    ok(worker.request("ping"), "pong")

    for kind, fields in (
        ("enqueue", {"job": {"type": "t"}}),
        ("get", {"job_id": job_id}),
        ("cancel", {"job_id": job_id}),
        ("retry", {"job_id": job_id}),
        ("delete", {"job_id": job_id}),
        ("stats", {}),
        ("direct", {"worker_id": worker_id, "state": "quiet"}),
    ):
        rid = worker.rid()
        worker.send({"type": kind, "rid": rid, **fields})
        assert refused(worker.reply_to(rid), "unauthorized")["rid"] == rid

    assert ok(client.request("get", job_id=job_id))["job"]["state"] == "completed"
    assert ok(client.request("stats"))["queues"]["q"]["completed"] == 1  # no job was added


def test_a_client_key_enqueues_reads_and_cancels_but_may_not_open_a_session_or_direct(peer):
    client, worker = peer("client"), peer("worker")
    worker_id = session(worker)
    job_id = enqueue(client)
    assert ok(client.request("get", job_id=job_id))["job"]["state"] == "available"
    assert ok(client.request("cancel", job_id=job_id))["state"] == "cancelled"
    refused(client.request("retry", job_id=job_id), "bad_request")  # allowed, but not discarded
    assert [w["worker_id"] for w in ok(client.request("stats"))["workers"]] == [worker_id]
    ok(client.request("ping"), "pong")

    refused(client.request("hello", v=1, role="worker", hostname="h", pid=1), "unauthorized")
    # the role is checked before the session: not `not_registered`, which would invite a hello
    refused(client.request("register", worker_id=worker_id, queues=["q"]), "unauthorized")
    refused(client.request("fetch", worker_id=worker_id, count=1), "unauthorized")
    refused(client.request("direct", worker_id=worker_id, state="quiet"), "unauthorized")
    refused(client.request("delete", job_id=job_id), "unauthorized")  # ended, but admin's to do
    beat = worker.request("beat", worker_id=worker_id, state="running", active_job_ids=[])
    assert ok(beat)["state"] == "running"  # the refused direct changed nothing
    assert ok(client.request("get", job_id=job_id))["job"]["state"] == "cancelled"


def test_an_admin_key_directs_workers_and_may_not_read_or_enqueue(peer):
    admin, worker = peer("admin"), peer("worker")
    worker_id = session(worker)
    ok(admin.request("direct", worker_id=worker_id, state="quiet"))
    beat = worker.request("beat", worker_id=worker_id, state="running", active_job_ids=[])
    assert ok(beat)["state"] == "quiet"
    ok(admin.request("ping"), "pong")
    refused(admin.request("stats"), "unauthorized")  # admin does not imply client
    refused(admin.request("enqueue", job={"type": "t"}), "unauthorized")
    refused(admin.request("hello", v=1, role="worker", hostname="h", pid=1), "unauthorized")


def test_only_an_admin_key_deletes_an_ended_job(peer):
    admin, client = peer("admin"), peer("client")
    job_id = enqueue(client)
    refused(admin.request("delete", job_id=job_id), "bad_request")  # allowed, but not ended
    assert ok(client.request("cancel", job_id=job_id))["state"] == "cancelled"
    refused(client.request("delete", job_id=job_id), "unauthorized")
    assert ok(admin.request("delete", job_id=job_id))["deleted"] is True
    refused(client.request("get", job_id=job_id), "unknown_job")
    refused(admin.request("delete", job_id=job_id), "unknown_job")


# -- the handshake -------------------------------------------------------------------------------


def test_an_unknown_key_and_a_peer_without_curve_get_nothing_while_allowed_peers_are_served(
    peer,
):
    stranger, plain, client = peer("stranger"), peer(None), peer("client")
    for refused_peer in (stranger, plain):
        refused_peer.send({"type": "ping", "rid": 1})
        refused_peer.send({"type": "enqueue", "rid": 2, "job": {"type": "t", "queue": "q"}})
    ok(client.request("ping"), "pong")
    assert none_answers([stranger, plain], SILENCE_S)
    assert ok(client.request("stats"))["queues"] == {}  # their enqueues never arrived


def test_a_peer_that_expects_another_coordinator_key_gets_nothing(secured, keys, peer):
    context = zmq.Context()
    try:
        wrong = CurvePeer(context, secured.address, keys / "client.key_secret", keys / "admin.key")
        wrong.send({"type": "ping", "rid": 1})
        assert wrong.nothing_within(SILENCE_S)
        wrong.close()
    finally:
        context.term()
    ok(peer("client").request("ping"), "pong")


# -- identity (section 7, last point) ------------------------------------------------------------


def test_a_worker_with_a_valid_key_cannot_act_on_another_workers_session_or_jobs(peer):
    owner, other, client = peer("worker"), peer("worker2"), peer("client")
    owner_id, other_id = session(owner), session(other, queues=("elsewhere",))
    job_id = enqueue(client)
    fetch_one(owner, owner_id)

    spoofed = {"worker_id": owner_id, "job_id": job_id, "attempt": 1}
    refused(other.request("ack", **spoofed, result="stolen"), "unknown_worker")
    refused(other.request("fail", **spoofed, error={"type": "x", "message": "y"}), "unknown_worker")
    refused(
        other.request("beat", worker_id=owner_id, state="terminate", active_job_ids=[job_id]),
        "unknown_worker",
    )
    refused(other.request("deregister", worker_id=owner_id), "unknown_worker")
    refused(other.request("fetch", worker_id=owner_id, count=1), "unknown_worker")
    # under its own id the job is not its reservation
    refused(other.request("ack", worker_id=other_id, job_id=job_id, attempt=1), "not_owner")

    job = ok(client.request("get", job_id=job_id))["job"]
    assert (job["state"], job["worker_id"], job["errors"]) == ("active", owner_id, [])
    ok(owner.request("ack", worker_id=owner_id, job_id=job_id, attempt=1, result="mine"))
    assert ok(client.request("get", job_id=job_id))["job"]["result"] == "mine"


# -- one session and one parked fetch per connection (SECURITY.md, limits) -----------------------


def test_a_connection_holds_one_session_and_one_parked_fetch_however_many_it_asks_for(peer):
    worker, client = peer("worker"), peer("client")
    for _ in range(20):
        session(worker)
    worker_id = session(worker)
    live = [w for w in ok(client.request("stats"))["workers"] if w["state"] != "terminated"]
    assert [w["worker_id"] for w in live] == [worker_id]

    rids = []
    for _ in range(20):
        rid = worker.rid()
        worker.send({"type": "fetch", "rid": rid, "worker_id": worker_id, "count": 1, "wait": 5})
        rids.append(rid)
    for rid in rids[:-1]:  # each newer fetch answered the older parked one at once
        assert ok(worker.reply_to(rid, timeout=3))["jobs"] == []
    job_id = enqueue(client)
    assert [job["id"] for job in ok(worker.reply_to(rids[-1]))["jobs"]] == [job_id]


# -- the nodes and the YAML path -----------------------------------------------------------------


def test_worker_and_client_nodes_with_keys_run_a_job_and_without_keys_get_nothing(secured, keys):
    server = keys / "coordinator.key"
    worker = WorkerNode(
        secured.address,
        curve=client_curve(keys / "worker.key_secret", server),
        handlers={"square": lambda x: x * x},
    ).start()
    try:
        with Client(secured.address, curve=client_curve(keys / "client.key_secret", server)) as c:
            assert c.enqueue("square", [9]).result(timeout=10) == 81
        with Client(secured.address, timeout=SILENCE_S) as plain, pytest.raises(Exception) as err:
            plain.ping()
        assert err.value.code == "connection_lost"
    finally:
        worker.stop(timeout=2)


SECURE_YAML = """
nodes:
  coordinator:
    kind: coordinator
    bind: tcp://127.0.0.1:{port}
    heartbeat_timeout: 10
    max_batch_jobs: 2
    security:
      secret_key_file: keys/coordinator.key_secret
      authorized:
        - {{public_key_file: keys/worker.key, roles: [worker]}}
        - {{public_key_file: keys/client.key, roles: [client, admin]}}
  worker:
    kind: worker
    connect: tcp://127.0.0.1:{port}
    handlers: {{square: "nodes.demo:square"}}
    shutdown_grace: 1
    security:
      secret_key_file: keys/worker.key_secret
      server_public_key_file: keys/coordinator.key
"""


def test_a_config_with_security_is_enforced_by_the_built_coordinator_and_its_cli(
    tmp_path, keys, raw_peer
):
    path = tmp_path / "secure.yaml"
    path.write_text(SECURE_YAML.format(port=free_port()))
    config = load_config(path)
    node = build_node(config.node("coordinator"), heartbeat_timeout=10.0).start()
    worker = None
    try:
        plain = raw_peer(node.address)
        plain.send({"type": "ping", "rid": 1})
        pinged_at = time.monotonic()
        worker = build_node(config.node("worker")).start()
        with Client(node.address, curve=config.client_curve()) as client:
            assert client.enqueue("square", [5]).result(timeout=10) == 25
            worker_id = wait_for(lambda: worker.worker_id, what="worker registered")
            with pytest.raises(Exception) as err:  # the configured limit applies too
                client.enqueue_many([{"type": "square", "args": [i]} for i in range(3)])
            assert err.value.code == "bad_request"

        status, quiet, keyed, anonymous = corral_at_once(
            ("status", "--json", "--config", str(path)),
            ("quiet", worker_id, "--config", str(path)),  # client.key has admin too
            ("status", "--connect", node.address, "--keys", str(keys)),
            ("status", "--connect", node.address, "--timeout", "1"),
        )
        assert status.returncode == 0, status.stderr
        assert worker_id in status.stdout
        assert quiet.returncode == 0, quiet.stderr
        assert keyed.returncode == 0, keyed.stderr
        assert anonymous.returncode == 2
        assert "no answer" in anonymous.stderr
        # the plain peer's ping was watched all along: nothing within SILENCE_S of sending it
        assert plain.nothing_within(max(0.0, pinged_at + SILENCE_S - time.monotonic()))
    finally:
        if worker is not None:
            worker.stop(timeout=2)
        node.stop()


def test_a_config_whose_key_file_is_missing_is_refused_naming_the_key(tmp_path, keys):
    path = tmp_path / "secure.yaml"
    path.write_text(SECURE_YAML.format(port=free_port()).replace("worker.key,", "nobody.key,"))
    with pytest.raises(Exception) as err:
        build_node(load_config(path).node("coordinator"))
    assert "key 'security.authorized[0].public_key_file'" in str(err.value)
    assert "nobody.key" in str(err.value)
