"""The `outcomes` extension (docs/PROTOCOL.md, "Extensions") over real sockets.

Coordinator side: a raw DEALER peer sends batches and checks each item is settled exactly as its
own `ack`/`fail` would be. Worker side: a corral WorkerNode talking to a bare ROUTER that speaks
only the base protocol (no `extensions` in `workerregistered`) must report with `ack`/`fail`,
and one whose coordinator announces the extension reports several jobs per frame.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
import zmq

from actors.worker_mail import BeatNow
from nodes import WorkerNode


@pytest.fixture
def connect(coordinator, raw_peer):
    node = coordinator(heartbeat_timeout=10.0)
    return lambda: raw_peer(node.address)


def _ok(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer.get("type") == "reply", answer
    return answer


def _worker_with_jobs(connect, count: int) -> tuple[Any, str, list[dict[str, Any]]]:
    client = connect()
    _ok(client.request("enqueue", jobs=[{"type": "t", "queue": "q"} for _ in range(count)]))
    peer = connect()
    hello = peer.request("hello", v=1, role="worker", hostname="h", pid=1)
    assert hello["extensions"] == ["outcomes"] and hello["max_message_size"] == 1024 * 1024
    worker_id = hello["worker_id"]
    _ok(
        peer.request(
            "register", worker_id=worker_id, queues=["q"], concurrency=count, hostname="h", pid=1
        )
    )
    jobs = _ok(peer.request("fetch", worker_id=worker_id, count=count, wait=2.0))["jobs"]
    assert len(jobs) == count
    return peer, worker_id, jobs


def test_one_outcomes_frame_settles_each_job_as_its_own_ack_or_fail_would(connect):
    peer, worker_id, jobs = _worker_with_jobs(connect, 3)
    done, retry, stale = jobs
    answer = _ok(
        peer.request(
            "outcomes",
            worker_id=worker_id,
            outcomes=[
                {"job_id": done["id"], "attempt": 1, "result": {"n": 1}},
                {"job_id": retry["id"], "attempt": 1, "error": {"type": "E", "message": "m"}},
                {"job_id": stale["id"], "attempt": 2, "result": None},  # not this attempt
            ],
        )
    )
    first, second, third = answer["results"]
    assert first == {"state": "completed"}
    assert second["state"] == "retryable" and second["next_attempt_at"] > time.time()
    assert third["code"] == "not_owner"

    client = connect()
    assert _ok(client.request("get", job_id=done["id"]))["job"]["result"] == {"n": 1}
    failed = _ok(client.request("get", job_id=retry["id"]))["job"]
    assert [e["type"] for e in failed["errors"]] == ["E"]
    assert _ok(client.request("get", job_id=stale["id"]))["job"]["state"] == "active"


def test_a_malformed_item_refuses_the_whole_frame_and_changes_nothing(connect):
    peer, worker_id, jobs = _worker_with_jobs(connect, 2)
    answer = peer.request(
        "outcomes",
        worker_id=worker_id,
        outcomes=[{"job_id": jobs[0]["id"], "attempt": 1}, {"job_id": jobs[1]["id"]}],
    )
    assert answer["type"] == "error" and answer["code"] == "bad_request"
    assert "outcomes[1]" in answer["message"]
    client = connect()
    assert [_ok(client.request("get", job_id=j["id"]))["job"]["state"] for j in jobs] == [
        "active",
        "active",
    ]


def test_outcomes_before_hello_are_refused_with_not_registered(connect):
    peer = connect()
    answer = peer.request("outcomes", worker_id="w", outcomes=[{"job_id": "j", "attempt": 1}])
    assert answer["code"] == "not_registered"


class BaseCoordinator:
    """A bare ROUTER answering hello/register/beat/fetch/ack/fail from the base protocol only,
    handing out `jobs` once, and recording every request it receives."""

    def __init__(
        self,
        jobs: list[dict[str, Any]],
        announce: dict[str, Any],
        refuse_outcomes: bool = False,
        hold_outcomes: bool = False,
    ) -> None:
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        port = self.socket.bind_to_random_port("tcp://127.0.0.1")
        self.address = f"tcp://127.0.0.1:{port}"
        self.jobs = jobs
        self.announce = announce
        self.refuse_outcomes = refuse_outcomes
        self.hold_outcomes = hold_outcomes  # answer `outcomes` only on release_outcomes()
        self.held: list[tuple[bytes, dict[str, Any]]] = []
        self.received: list[dict[str, Any]] = []

    def serve_until(self, done: Any, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"worker did not finish; it sent {[r['type'] for r in self.received]}")
            if self.socket.poll(int(min(remaining, 0.1) * 1000)):
                peer, frame = self.socket.recv_multipart()
                self._answer(peer, msgpack.unpackb(frame, raw=False))

    def _answer(self, peer: bytes, request: dict[str, Any]) -> None:
        self.received.append(request)
        kind, rid = request["type"], request["rid"]
        reply: dict[str, Any] = {"type": "reply", "rid": rid}
        if kind == "hello":
            reply = {
                "type": "workerregistered",
                "rid": rid,
                "worker_id": "w-1",
                "heartbeat_interval": 5.0,
                "heartbeat_timeout": 30.0,
                "visibility_timeout": 1800.0,
                **self.announce,
            }
        elif kind == "register":
            reply["worker_id"], reply["resumed_job_ids"] = "w-1", []
        elif kind == "beat":
            reply.update(state="running", visibility_timeout=1800.0, cancel_job_ids=[])
        elif kind == "fetch":
            reply["jobs"], self.jobs = self.jobs, []
        elif kind == "fail":
            reply["state"] = "discarded"
        elif kind == "outcomes" and self.refuse_outcomes:
            reply = {"type": "error", "rid": rid, "code": "bad_request", "message": "no"}
        elif kind == "outcomes" and self.hold_outcomes:
            self.held.append((peer, request))
            return
        elif kind == "outcomes":
            reply["results"] = _completed(request)
        self.socket.send_multipart([peer, msgpack.packb(reply, use_bin_type=True)])

    def release_outcomes(self) -> None:
        """Answer every held `outcomes` frame, and answer later ones at once."""
        self.hold_outcomes = False
        for peer, request in self.held:
            reply = {"type": "reply", "rid": request["rid"], "results": _completed(request)}
            self.socket.send_multipart([peer, msgpack.packb(reply, use_bin_type=True)])
        self.held = []

    def reported(self) -> dict[str, str]:
        """job id -> the request type that reported it."""
        seen = {}
        for request in self.received:
            if request["type"] in ("ack", "fail"):
                seen[request["job_id"]] = request["type"]
            elif request["type"] == "outcomes":
                seen.update((item["job_id"], "outcomes") for item in request["outcomes"])
        return seen

    def close(self) -> None:
        self.socket.close(0)
        self.context.term()


def _completed(outcomes: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"state": "completed"} for _ in outcomes["outcomes"]]


def _job(job_id: str, job_type: str) -> dict[str, Any]:
    return {"id": job_id, "type": job_type, "args": [], "queue": "default", "attempt": 1}


@pytest.fixture
def base_coordinator() -> Iterator[Any]:
    made: list[BaseCoordinator] = []

    def make(
        jobs: list[dict[str, Any]], announce: dict[str, Any], **options: Any
    ) -> BaseCoordinator:
        made.append(BaseCoordinator(jobs, announce, **options))
        return made[-1]

    yield make
    for server in made:
        server.close()


def _boom() -> None:
    raise ValueError("no")


@pytest.mark.parametrize(
    ("announce", "expected"),
    [({}, {"j-1": "ack", "j-2": "fail"}), ({"extensions": ["outcomes"]}, None)],
    ids=["base-protocol", "with-extension"],
)
def test_a_worker_reports_with_ack_and_fail_unless_the_coordinator_announces_outcomes(
    base_coordinator, announce, expected
):
    server = base_coordinator([_job("j-1", "ok"), _job("j-2", "boom")], announce)
    node = WorkerNode(server.address, concurrency=2, handlers={"ok": lambda: 1, "boom": _boom})
    node.start()
    try:
        server.serve_until(lambda: len(server.reported()) == 2)
    finally:
        node.kill()
    reported = server.reported()
    if expected is not None:
        assert reported == expected
    else:
        assert set(reported.values()) == {"outcomes"}
        assert not [r for r in server.received if r["type"] in ("ack", "fail")]


def test_a_worker_whose_outcomes_frame_is_refused_reports_every_job_with_ack_or_fail_from_then_on(
    base_coordinator,
):
    server = base_coordinator(
        [_job("j-1", "ok"), _job("j-2", "boom")],
        {"extensions": ["outcomes"]},
        refuse_outcomes=True,
    )
    node = WorkerNode(server.address, concurrency=2, handlers={"ok": lambda: 1, "boom": _boom})
    node.start()
    try:
        server.serve_until(lambda: server.reported() == {"j-1": "ack", "j-2": "fail"})
        server.serve_until(lambda: node.status()["unreported"] == 0)
    finally:
        node.kill()
    kinds = [r["type"] for r in server.received if r["type"] in ("outcomes", "ack", "fail")]
    assert kinds[0] == "outcomes" and sorted(kinds[1:]) == ["ack", "fail"]  # one refusal is enough


def test_a_worker_keeps_one_outcomes_frame_unanswered_and_sends_what_finished_meanwhile_in_one(
    base_coordinator,
):
    server = base_coordinator(
        [_job("j-1", "ok"), _job("j-2", "gated"), _job("j-3", "gated")],
        {"extensions": ["outcomes"]},
        hold_outcomes=True,
    )
    gate = threading.Event()
    node = WorkerNode(
        server.address,
        concurrency=3,
        handlers={"ok": lambda: 1, "gated": lambda: gate.wait(10)},
    )
    node.start()
    try:
        frames = lambda: [r for r in server.received if r["type"] == "outcomes"]  # noqa: E731
        server.serve_until(lambda: len(frames()) == 1)
        assert [item["job_id"] for item in frames()[0]["outcomes"]] == ["j-1"]
        gate.set()  # j-2 and j-3 finish while the first frame waits for its answer
        server.serve_until(lambda: node.status()["unreported"] == 3)
        beats = len([r for r in server.received if r["type"] == "beat"])
        node._connection.tell(BeatNow())  # sent after anything the link sent before it
        server.serve_until(lambda: len([r for r in server.received if r["type"] == "beat"]) > beats)
        assert len(frames()) == 1  # nothing more while the first frame is unanswered

        server.release_outcomes()
        server.serve_until(lambda: len(frames()) == 2 and node.status()["unreported"] == 0)
    finally:
        node.kill()
    assert sorted(item["job_id"] for item in frames()[1]["outcomes"]) == ["j-2", "j-3"]
