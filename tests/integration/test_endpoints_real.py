"""Peers given several coordinator endpoints, over real ZeroMQ on loopback TCP: they find the
leader past a standby (a raw ROUTER here answering `not_leader` with the leader's endpoint),
a worker whose coordinator process is SIGKILLed notices at once and resumes its running job
on the next coordinator (another process on the same SQLite file), and a frozen (SIGSTOPped)
coordinator is given up within seconds."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
import zmq

from nodes.client import Client
from tests.integration.conftest import corral, free_port
from tests.integration.real_cluster import (
    hold_jobs,
    registered,
    resumed_under_a_new_id,
    start_coordinator,
    start_worker,
)
from transport import codec
from transport.zmq import WATCHED_HEARTBEAT_TIMEOUT_MS, zmq_connector


class FakeStandby:
    """A ROUTER on its own thread: pong to `ping`, `not_leader` naming `leader` to the rest."""

    def __init__(self, leader: str) -> None:
        self.leader = leader
        self.seen: list[str] = []
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.bind("tcp://127.0.0.1:*")
        self.address = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self._socket.poll(50):
                continue
            peer, frame = self._socket.recv_multipart()
            body = msgpack.unpackb(frame, raw=False)
            self.seen.append(body["type"])
            if body["type"] == "ping":
                reply: dict[str, Any] = {"type": "pong", "rid": body["rid"]}
            else:
                reply = {"type": "error", "rid": body["rid"], "code": "not_leader"}
                reply.update(message="a standby", leader=self.leader)
            self._socket.send_multipart([peer, msgpack.packb(reply, use_bin_type=True)])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._socket.close(linger=0)
        self._context.term()


@pytest.fixture
def standby() -> Iterator[Any]:
    """Factory: `standby(leader_address)` starts a FakeStandby; all are closed at teardown."""
    made: list[FakeStandby] = []

    def start(leader: str) -> FakeStandby:
        made.append(FakeStandby(leader))
        return made[-1]

    yield start
    for fake in made:
        fake.close()


def test_a_worker_listing_a_standby_first_registers_with_the_leader_and_runs_jobs(
    coordinator, standby, workers, clients
):
    leader = coordinator()
    fake = standby(leader.address)
    worker = workers([fake.address, leader.address], handlers={"square": lambda x: x * x})
    client = clients(leader.address)
    assert client.enqueue("square", [7]).result(timeout=10) == 49
    assert [w["worker_id"] for w in client.stats()["workers"]] == [worker.worker_id]
    assert fake.seen == ["hello"]


def test_a_client_listing_a_standby_first_enqueues_and_gets_results(
    coordinator, standby, workers
):
    leader = coordinator()
    fake = standby(leader.address)
    workers(leader.address, handlers={"square": lambda x: x * x})
    with Client([fake.address, leader.address], timeout=10) as client:
        jobs = [client.enqueue("square", [n]) for n in range(3)]
        assert [job.result(timeout=10) for job in jobs] == [0, 1, 4]
    assert fake.seen == ["enqueue"]  # then the leader, named in the answer, took them all


def test_a_worker_whose_coordinator_is_killed_resumes_its_job_on_the_next_one(
    spawn, clients, tmp_path
):
    # Given a coordinator process on SQLite, and a worker process listing it and a second
    # endpoint (nobody there yet), running a job
    store = f"sqlite:///{tmp_path / 'corral.db'}"
    first, address = start_coordinator(spawn, tmp_path, "coordinator-1", store=store)
    second = f"tcp://127.0.0.1:{free_port()}"
    before = clients(address)
    worker = start_worker(spawn, f"{address},{second}", "worker", 1, 25.0)
    worker_id = registered(before, worker)
    release = tmp_path / "release"
    [job] = hold_jobs(before, tmp_path, release)

    # When the coordinator is SIGKILLed
    first.signal(signal.SIGKILL)
    killed_at = time.monotonic()
    first.wait()
    # Then the worker notices at once: its connection dropped (no wait for heartbeat_timeout)
    worker.wait_for_line(r"lost \(connection dropped\)", timeout=5)
    print(f"worker noticed the kill after {time.monotonic() - killed_at:.3f} s")

    # And once a second coordinator opens the same file at the second endpoint, the worker
    # resumes its running job there, and it completes once, on its first attempt. (Nobody
    # listened there until now: the worker found both endpoints refused and backed off, so
    # this coordinator gives it 10 s to come back, where a standby would have answered all
    # along and kept the worker's delay at its first.)
    _, again = start_coordinator(
        spawn, tmp_path, "coordinator-2", bind=second, store=store, heartbeat_timeout=10.0
    )
    after = clients(again)
    resumed_under_a_new_id(after, worker, job, worker_id, timeout=20)
    release.touch()
    done = after.get(job, wait=10)
    assert (done.state, done.attempt, done.errors) == ("completed", 1, [])


def test_a_watched_connection_to_a_frozen_coordinator_is_lost_within_its_heartbeat_timeout(
    spawn, tmp_path
):
    # Given a watched connection (a peer with other endpoints) that has heard its coordinator
    process, address = start_coordinator(spawn, tmp_path, "coordinator")
    heard, lost = threading.Event(), threading.Event()
    conn = zmq_connector(address)(lambda frame: heard.set(), lost.set)
    try:
        conn.send(codec.encode({"type": "ping", "rid": 1}))
        assert heard.wait(5), "no pong"
        # When the coordinator process is frozen: its TCP connection stays up, silent
        process.signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        # Then the ZMTP heartbeats give it up within a few seconds (not the default 15 s)
        assert lost.wait(WATCHED_HEARTBEAT_TIMEOUT_MS / 1000 + 3), "the frozen peer was not left"
        print(f"frozen coordinator left after {time.monotonic() - frozen_at:.2f} s")
    finally:
        conn.close()
        process.signal(signal.SIGCONT)


def test_corral_status_with_a_dead_endpoint_first_reaches_the_live_one(coordinator):
    live = coordinator()
    dead = f"tcp://127.0.0.1:{free_port()}"
    result = corral("status", "--connect", f"{dead},{live.address}", "--json")
    assert result.returncode == 0, result.stderr
    assert '"queues"' in result.stdout


def test_a_client_passes_a_dead_coordinator_at_once_instead_of_waiting_out_its_attempt(
    coordinator,
):
    # Given a client whose first endpoint has nobody listening, and a call timeout (2 s)
    # shorter than one attempt's (3 s): waiting on the dead endpoint would spend it all
    live = coordinator()
    dead = f"tcp://127.0.0.1:{free_port()}"
    with Client([dead, live.address], timeout=2.0) as client:
        # Then the refused connection ends that attempt, and the call reaches the live one
        assert client.stats()["queues"] == {}
        assert client.enqueue("noop").id
