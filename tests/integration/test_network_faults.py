"""The network between a worker and the coordinator fails: cut (a partition, longer or shorter
than the heartbeat timeout), reset (an RST from a NAT that forgot the flow), or slow.

The network is a `Relay`, a TCP relay in this process standing in for it.
Worker and coordinator processes are started from tests/integration/node_script.py with short
timings (tests/integration/real_cluster.py); every wait is a condition with a deadline and
every process is killed at teardown (the `spawn` fixture). docs/FAILURES.md cites these tests.
"""

from __future__ import annotations

import contextlib
import queue
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import wait_for
from tests.integration.conftest import PROCESS_EXIT_TIMEOUT_S
from tests.integration.real_cluster import (
    FAST,
    HEARTBEAT_TIMEOUT_S,
    RECOVERY_MARGIN_S,
    SLOW_LINK_LATENCY_S,
    hold_jobs,
    live_worker,
    registered,
    resumed_under_a_new_id,
    runs_jobs_again,
    session_of,
    start_worker,
)


class Relay:
    """A TCP relay in front of the coordinator, standing in for the network between it and
    the workers that connect through `address`.

    `cut()` is a partition: nothing is forwarded either way and the bytes wait in the kernel's
    buffers, as TCP keeps retransmitting across a real partition; `heal()` lets them through.
    `reset()` tears every relayed connection down with an RST (a NAT or firewall that forgot
    the flow): ZeroMQ reconnects on its own, and the coordinator sees a new peer. `latency`
    delays every byte by that many seconds each way (a slow or distant link).
    """

    POLL_S = 0.02

    def __init__(self, target: str, latency: float = 0.0) -> None:
        host, port = target.removeprefix("tcp://").rsplit(":", 1)
        self.latency = latency
        self._target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(self.POLL_S)
        self.address = f"tcp://127.0.0.1:{self._listener.getsockname()[1]}"
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._links: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, name="relay", daemon=True)]
        self._threads[0].start()

    def cut(self) -> float:
        self._flowing.clear()
        return time.time()

    def heal(self) -> float:
        self._flowing.set()
        return time.time()

    def reset(self) -> float:
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            with_rst(link)
        return time.time()

    def close(self) -> None:
        self._closed.set()
        self._flowing.set()
        self._listener.close()
        self.reset()
        for thread in self._threads:
            thread.join(PROCESS_EXIT_TIMEOUT_S)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                inside, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                outside = socket.create_connection(self._target, timeout=5)
            except OSError:
                inside.close()
                continue
            with self._lock:
                self._links += [inside, outside]
            for source, sink in ((inside, outside), (outside, inside)):
                pump = threading.Thread(target=self._pump, args=(source, sink), daemon=True)
                pump.start()
                self._threads.append(pump)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Read from `source` while the network flows; each chunk reaches `sink` `latency`
        seconds later, in order (a delay line, so a slow link still carries every beat)."""
        line: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()
        writer = threading.Thread(target=self._deliver, args=(line, source, sink), daemon=True)
        writer.start()
        self._threads.append(writer)
        try:
            while not self._closed.is_set():
                if not self._flowing.wait(self.POLL_S):
                    continue  # partitioned: leave the bytes where they are
                readable, _, _ = select.select([source], [], [], self.POLL_S)
                if not readable or not self._flowing.is_set():
                    continue
                data = source.recv(65536)
                if not data:
                    break
                line.put((time.monotonic() + self.latency, data))
        except (OSError, ValueError):
            pass  # reset or closed under us
        line.put((0.0, b""))

    def _deliver(
        self,
        line: queue.SimpleQueue[tuple[float, bytes]],
        source: socket.socket,
        sink: socket.socket,
    ) -> None:
        try:
            while True:
                due, data = line.get()
                if not data:
                    break
                self._closed.wait(max(0.0, due - time.monotonic()))
                sink.sendall(data)
        except (OSError, ValueError):
            pass
        with_rst(source)
        with_rst(sink)


def with_rst(link: socket.socket) -> None:
    """Close with SO_LINGER 0, so the peer gets an RST rather than a FIN."""
    with contextlib.suppress(OSError):
        link.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    link.close()


@pytest.fixture
def relays() -> Iterator[Callable[..., Relay]]:
    """Factory: `relays(coordinator_address, latency=0)` starts a Relay; all are closed at
    teardown."""
    started: list[Relay] = []

    def start(target: str, latency: float = 0.0) -> Relay:
        relay = Relay(target, latency)
        started.append(relay)
        return relay

    yield start
    for relay in started:
        relay.close()


def test_a_worker_partitioned_past_the_heartbeat_timeout_loses_its_job_which_completes_once(
    coordinator, spawn, clients, relays, tmp_path
):
    # Given a worker reaching the coordinator through a relay, running a job, and a second
    # worker connected directly
    node = coordinator(**FAST)
    client = clients(node.address)
    relay = relays(node.address)
    release = tmp_path / "release"
    far = start_worker(spawn, relay.address, "far", concurrency=1)
    far_id = registered(client, far)
    [job] = hold_jobs(client, tmp_path, release)
    near = start_worker(spawn, node.address, "near", concurrency=1)
    near_id = registered(client, near)

    # When the network between them is cut for longer than the heartbeat timeout
    cut_at = relay.cut()

    # Then the coordinator declares the far worker dead and hands the job to the near one
    wait_for(lambda: client.get(job).attempt == 2, timeout=HEARTBEAT_TIMEOUT_S + 5)
    moved = client.get(job)
    assert [(e["type"], e["attempt"]) for e in moved.errors] == [("worker_lost", 1)]
    assert moved.errors[0]["at"] - cut_at <= HEARTBEAT_TIMEOUT_S + RECOVERY_MARGIN_S
    print(f"recovered {moved.errors[0]['at'] - cut_at:.3f} s after the cut")
    assert (moved.state, moved.raw["worker_id"]) == ("active", near_id)

    # And while still cut off, both copies finish: the far worker's result cannot arrive
    release.touch()
    wait_for(lambda: client.get(job).state == "completed", timeout=10, what="completed")

    # And after the partition heals, the far worker comes back under a new id and runs jobs
    # again, and its late outcome changed nothing: the job completed once, with near's result
    relay.heal()
    assert runs_jobs_again(client, far) != far_id
    done = client.get(job)
    assert (done.state, done.attempt, done.raw["worker_id"], done.result) == (
        "completed",
        2,
        near_id,
        near.pid,
    )
    assert client.stats()["queues"]["default"]["completed"] == 1


def test_a_partition_shorter_than_the_heartbeat_timeout_changes_nothing(
    coordinator, spawn, clients, relays, tmp_path
):
    # Given a worker reaching the coordinator through a relay, running a job
    node = coordinator(**FAST)
    client = clients(node.address)
    relay = relays(node.address)
    release = tmp_path / "release"
    worker = start_worker(spawn, relay.address, "worker", concurrency=1)
    worker_id = registered(client, worker)
    [job] = hold_jobs(client, tmp_path, release)

    # When the link is cut until the coordinator has heard nothing for half the timeout
    cut_at = relay.cut()
    wait_for(
        lambda: time.time() - session_of(client, worker_id)["last_seen"] >= HEARTBEAT_TIMEOUT_S / 2,
        timeout=5,
        what="the coordinator has heard nothing for half the timeout",
    )
    healed_at = relay.heal()
    wait_for(
        lambda: session_of(client, worker_id)["last_seen"] > healed_at,
        timeout=5,
        what="beats arriving again",
    )

    # Then nothing happened: same session, same attempt, no error; the job completes there
    assert healed_at - cut_at < HEARTBEAT_TIMEOUT_S
    assert live_worker(client, worker.pid) == session_of(client, worker_id)
    release.touch()
    done = client.get(job, wait=10)
    assert (done.state, done.attempt, done.errors) == ("completed", 1, [])
    assert (done.raw["worker_id"], done.result) == (worker_id, worker.pid)


def test_a_worker_whose_tcp_connection_is_reset_resumes_its_job_under_a_new_id(
    coordinator, spawn, clients, relays, tmp_path
):
    # Given a worker reaching the coordinator through a relay, running a job
    node = coordinator(**FAST)
    client = clients(node.address)
    relay = relays(node.address)
    release = tmp_path / "release"
    worker = start_worker(spawn, relay.address, "worker", concurrency=1)
    first_id = registered(client, worker)
    [job] = hold_jobs(client, tmp_path, release)

    # When the TCP connection is reset (ZeroMQ reconnects by itself; the coordinator sees a
    # new peer that never said hello, and answers its next beat with not_registered)
    relay.reset()

    # Then the worker says hello again and resumes its running job under one new worker_id;
    # the previous session is ended (replaced), not left to time out
    second_id = resumed_under_a_new_id(client, worker, job, first_id)
    assert session_of(client, first_id)["state"] == "terminated"

    # And the job finishes on its first attempt, under that id, without a recorded error
    release.touch()
    done = client.get(job, wait=10)
    assert (done.state, done.attempt, done.errors) == ("completed", 1, [])
    assert (done.raw["worker_id"], done.result) == (second_id, worker.pid)


def test_a_worker_on_a_slow_link_whose_connection_is_reset_still_resumes_its_job(
    coordinator, spawn, clients, relays, tmp_path
):
    # Given a worker whose link to the coordinator takes SLOW_LINK_LATENCY_S each way, so that
    # reconnecting (TCP and ZMTP handshakes, then hello) takes longer than a beat interval;
    # it registered over that link once already, so slowness alone is not what breaks it
    node = coordinator(**FAST)
    client = clients(node.address)
    relay = relays(node.address, latency=SLOW_LINK_LATENCY_S)
    release = tmp_path / "release"
    worker = start_worker(spawn, relay.address, "worker", concurrency=1)
    first_id = registered(client, worker)
    [job] = hold_jobs(client, tmp_path, release)

    # When its TCP connection is reset
    relay.reset()

    # Then it resumes its running job under a new worker_id, as on a fast link, and the job
    # completes on its first attempt
    second_id = resumed_under_a_new_id(client, worker, job, first_id)
    release.touch()
    done = client.get(job, wait=10)
    assert (done.state, done.attempt, done.errors) == ("completed", 1, [])
    assert (done.raw["worker_id"], done.result) == (second_id, worker.pid)
