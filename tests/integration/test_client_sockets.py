"""The Client over ZeroMQ (transport/requesters.py): each calling thread has a socket of its
own and reads its own replies; a request that times out never runs later; a thread's socket
goes when the thread does."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
import zmq

from nodes import Client
from tests.conftest import wait_for
from transport.errors import ConnectionLost

THREADS = 8


def test_requests_from_many_threads_each_get_their_own_replies(coordinator):
    node = coordinator()
    errors: list[BaseException] = []
    with Client(node.address) as client:

        def enqueue_and_read(n: int) -> None:
            try:
                for i in range(25):
                    job = client.enqueue("t", [n, i])
                    assert client.get(job).args == [n, i]
            except BaseException as exc:  # reported below, with the thread's own failure
                errors.append(exc)

        threads = [threading.Thread(target=enqueue_and_read, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors, errors[0]
        assert client.stats()["queues"]["default"]["available"] == THREADS * 25


def test_a_long_wait_in_one_thread_does_not_hold_up_another_threads_requests(coordinator):
    node = coordinator()
    with Client(node.address) as client:
        job = client.enqueue("nobody-runs-this")
        waiting = threading.Thread(target=lambda: client.get(job, wait=5))
        waiting.start()
        wait_for(lambda: client._requester.open_sockets == 2, what="the waiter's socket")
        assert client.enqueue("t") and waiting.is_alive()  # answered while the get still waits
        client.cancel(job)  # which ends the wait
        waiting.join(10)
        assert not waiting.is_alive()


class SilentOnce:
    """A bare ROUTER that leaves the first request unanswered until the second arrives, then
    answers both (the late one on the connection it came from)."""

    def __init__(self) -> None:
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.address = f"tcp://127.0.0.1:{self.socket.bind_to_random_port('tcp://127.0.0.1')}"
        self.peers: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._stop = threading.Event()
        self._thread.start()

    def _serve(self) -> None:
        held: list[tuple[bytes, dict[str, Any]]] = []
        while not self._stop.is_set():
            if not self.socket.poll(50):
                continue
            peer, frame = self.socket.recv_multipart()
            self.peers.append(peer)
            request = msgpack.unpackb(frame)
            held.append((peer, request))
            if len(held) == 1:
                continue  # the first request waits for the second
            for held_peer, held_request in held:
                reply = {"type": "pong", "rid": held_request["rid"], "for": len(self.peers)}
                self.socket.send_multipart([held_peer, msgpack.packb(reply)])
            held.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.socket.close(0)
        self.context.term()


@pytest.fixture
def silent_once() -> Iterator[SilentOnce]:
    server = SilentOnce()
    yield server
    server.close()


def test_a_request_that_times_out_is_dropped_with_its_socket_so_its_late_reply_is_never_taken(
    silent_once,
):
    with Client(silent_once.address, timeout=0.3) as client:
        with pytest.raises(ConnectionLost):
            client.ping()
        client.ping()  # its reply, not the late one of the first ping
    first, second = silent_once.peers
    assert first != second  # the second ping left on a new connection


def test_a_threads_socket_is_closed_when_the_thread_ends(coordinator):
    node = coordinator()
    with Client(node.address) as client:
        client.ping()
        threads = [threading.Thread(target=client.ping) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        requester = client._requester
        wait_for(lambda: gc.collect() is not None and requester.open_sockets == 1)


def test_a_closed_client_refuses_requests_and_a_thread_still_waiting_gets_connection_lost(
    coordinator,
):
    node = coordinator()
    client = Client(node.address)
    job = client.enqueue("nobody-runs-this")
    outcome: list[BaseException | None] = []

    def wait_for_job() -> None:
        try:
            client.get(job, wait=0.5)
            outcome.append(None)
        except ConnectionLost as exc:
            outcome.append(exc)

    waiting = threading.Thread(target=wait_for_job)
    waiting.start()
    wait_for(lambda: client._requester.open_sockets == 2, what="the waiter's socket")
    client.close()
    with pytest.raises(ConnectionLost, match="closed"):
        client.ping()
    waiting.join(10)
    assert len(outcome) == 1  # its wait ended one way or the other, and it was not stuck
    wait_for(lambda: client._requester.open_sockets == 0, what="every socket closed")
