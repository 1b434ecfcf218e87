"""One set of transport tests run against both implementations: one interface, two
implementations, one conformance test.

"zmq" is real ZeroMQ over TCP loopback on a random port; "inproc" is the in-process network
delivering on its own thread. Every wait is on a condition with a deadline.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils.monitor import recv_monitor_message

from transport.base import ClientConnection, ServerFrameHandler
from transport.inproc import InprocNetwork
from transport.zmq import CurveClientConfig, CurveServerConfig, ZmqServer, zmq_connector

TIMEOUT_S = 5.0
_addresses = itertools.count(1)


class Inbox:
    """Collects what a callback receives; a test waits for a count with a deadline."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._items: list[Any] = []

    def put(self, item: Any) -> None:
        with self._changed:
            self._items.append(item)
            self._changed.notify_all()

    def put_pair(self, peer: bytes, frame: bytes) -> None:
        self.put((peer, frame))

    def wait_for(self, count: int) -> list[Any]:
        with self._changed:
            arrived = self._changed.wait_for(lambda: len(self._items) >= count, TIMEOUT_S)
            assert arrived, f"{len(self._items)} of {count} items within {TIMEOUT_S} s"
            return list(self._items)

    def items(self) -> list[Any]:
        with self._changed:
            return list(self._items)


class ZmqBackend:
    """Servers on `tcp://127.0.0.1:*`; connections with private contexts."""

    def __init__(self) -> None:
        self._closers: list[Callable[[], None]] = []

    def server(self, address: str = "tcp://127.0.0.1:*", **options: Any) -> Any:
        server = ZmqServer(address, **options)
        self._closers.append(server.close)
        return server

    def connect(
        self,
        address: str,
        on_frame: Callable[[bytes], None],
        on_lost: Callable[[], None] | None = None,
    ) -> ClientConnection:
        conn = zmq_connector(address)(on_frame, on_lost)
        self._closers.append(conn.close)
        return conn

    def close(self) -> None:
        for close in reversed(self._closers):
            close()


class InprocBackend:
    """One `InprocNetwork` delivering on its own thread."""

    def __init__(self) -> None:
        self.network = InprocNetwork(auto=True)
        self._closers: list[Callable[[], None]] = []

    def server(self, address: str | None = None) -> Any:
        server = self.network.bind(address or f"inproc://server-{next(_addresses)}")
        self._closers.append(server.close)
        return server

    def connect(
        self,
        address: str,
        on_frame: Callable[[bytes], None],
        on_lost: Callable[[], None] | None = None,
    ) -> ClientConnection:
        conn = self.network.connector(address, node="test")(on_frame, on_lost)
        self._closers.append(conn.close)
        return conn

    def close(self) -> None:
        for close in reversed(self._closers):
            close()
        self.network.close()


Backend = ZmqBackend | InprocBackend


@pytest.fixture(params=["zmq", "inproc"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    threads_before = set(threading.enumerate())
    made: Backend = ZmqBackend() if request.param == "zmq" else InprocBackend()
    yield made
    made.close()
    leaked = [t.name for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    assert leaked == [], "close() must stop every transport thread"


def echo_server(backend: Backend, seen: Inbox | None = None) -> Any:
    """A started server that records `(peer, frame)` and sends `echo:` + frame back."""
    server = backend.server()
    server.start(echo_to(server, seen))
    return server


def test_a_frame_goes_to_the_server_and_its_reply_comes_back(backend: Backend) -> None:
    server = echo_server(backend)
    replies = Inbox()
    conn = backend.connect(server.bound_address, replies.put)

    conn.send(b"hello")

    assert replies.wait_for(1) == [b"echo:hello"]


def test_a_watched_connection_is_told_when_its_server_goes_and_an_unwatched_one_is_not(
    backend: Backend,
) -> None:
    # Given a watched and an unwatched connection, each having heard from the server
    server = echo_server(backend)
    replies, lost = Inbox(), Inbox()
    watched = backend.connect(server.bound_address, replies.put, lambda: lost.put("watched"))
    plain = backend.connect(server.bound_address, replies.put)
    watched.send(b"a")
    plain.send(b"b")
    replies.wait_for(2)
    # When the server closes (its coordinator died: for ZeroMQ the TCP connection drops)
    server.close()
    # Then the watched connection is told at once, and only it
    assert lost.wait_for(1) == ["watched"]
    watched.send(b"after")  # a connection told it was lost still takes sends, and drops them


def test_each_connection_has_its_own_peer_id_fixed_for_its_life(backend: Backend) -> None:
    seen = Inbox()
    server = echo_server(backend, seen)
    first = backend.connect(server.bound_address, Inbox().put)
    second = backend.connect(server.bound_address, Inbox().put)

    for n in range(3):
        first.send(b"first-%d" % n)
        second.send(b"second-%d" % n)

    arrived = seen.wait_for(6)
    first_peers = {peer for peer, frame in arrived if frame.startswith(b"first")}
    second_peers = {peer for peer, frame in arrived if frame.startswith(b"second")}
    assert len(first_peers) == 1
    assert len(second_peers) == 1
    assert first_peers != second_peers


def test_a_thousand_frames_arrive_in_order_both_ways(backend: Backend) -> None:
    seen = Inbox()
    server = echo_server(backend, seen)
    replies = Inbox()
    conn = backend.connect(server.bound_address, replies.put)
    frames = [b"%d" % n for n in range(1000)]

    for frame in frames:
        conn.send(frame)

    assert [frame for _, frame in seen.wait_for(1000)] == frames
    assert replies.wait_for(1000) == [b"echo:" + frame for frame in frames]


def test_frames_sent_from_four_threads_at_once_all_arrive(backend: Backend) -> None:
    seen = Inbox()
    server = backend.server()
    server.start(seen.put_pair)
    received = Inbox()
    conn = backend.connect(server.bound_address, received.put)
    conn.send(b"hello")
    [(peer, _)] = seen.wait_for(1)
    start = threading.Barrier(4)

    def blast(name: bytes, send: Callable[[bytes], None]) -> None:
        start.wait(TIMEOUT_S)
        for n in range(250):
            send(b"%s-%d" % (name, n))

    def run_four(send: Callable[[bytes], None]) -> None:
        threads = [threading.Thread(target=blast, args=(b"t%d" % t, send)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT_S)

    run_four(conn.send)
    run_four(lambda frame: server.send(peer, frame))

    to_server = [frame for _, frame in seen.wait_for(1001)[1:]]
    to_client = received.wait_for(1000)
    for t in range(4):
        expected = [b"t%d-%d" % (t, n) for n in range(250)]
        assert [f for f in to_server if f.startswith(b"t%d-" % t)] == expected
        assert [f for f in to_client if f.startswith(b"t%d-" % t)] == expected


def test_a_new_connection_after_close_gets_a_new_peer_id(backend: Backend) -> None:
    seen = Inbox()
    server = echo_server(backend, seen)
    replies = Inbox()
    old = backend.connect(server.bound_address, replies.put)
    old.send(b"old")
    replies.wait_for(1)

    old.close()
    new = backend.connect(server.bound_address, replies.put)
    new.send(b"new")

    (old_peer, _), (new_peer, _) = seen.wait_for(2)
    assert old_peer != new_peer
    assert replies.wait_for(2)[1] == b"echo:new"


def test_sending_to_an_unknown_peer_neither_raises_nor_stops_the_server(backend: Backend) -> None:
    server = echo_server(backend)
    replies = Inbox()
    conn = backend.connect(server.bound_address, replies.put)

    server.send(b"no-such-peer", b"lost")
    conn.send(b"still there?")

    assert replies.wait_for(1) == [b"echo:still there?"]


def test_close_is_idempotent_and_sending_after_close_is_harmless(backend: Backend) -> None:
    never_started = backend.server()
    never_started.close()
    never_started.close()
    server = echo_server(backend)
    conn = backend.connect(server.bound_address, Inbox().put)

    conn.close()
    conn.close()
    conn.send(b"after close")
    server.close()
    server.close()
    server.send(b"peer", b"after close")


def test_a_callback_that_raises_does_not_stop_the_next_delivery(backend: Backend) -> None:
    seen = Inbox()
    server = backend.server()

    def on_frame(peer: bytes, frame: bytes) -> None:
        if frame == b"boom":
            raise RuntimeError("server callback failure (expected by the test)")
        seen.put(frame)
        server.send(peer, b"boom")
        server.send(peer, frame)

    server.start(on_frame)
    replies = Inbox()

    def on_reply(frame: bytes) -> None:
        if frame == b"boom":
            raise RuntimeError("client callback failure (expected by the test)")
        replies.put(frame)

    conn = backend.connect(server.bound_address, on_reply)
    conn.send(b"boom")
    conn.send(b"next")

    assert seen.wait_for(1) == [b"next"]
    assert replies.wait_for(1) == [b"next"]


def test_a_callback_may_close_its_own_connection(backend: Backend) -> None:
    server = echo_server(backend)
    replies = Inbox()
    conn: ClientConnection | None = None

    def on_reply(frame: bytes) -> None:
        assert conn is not None
        conn.close()
        replies.put(frame)

    conn = backend.connect(server.bound_address, on_reply)
    conn.send(b"bye")

    assert replies.wait_for(1) == [b"echo:bye"]


def test_binding_an_address_already_bound_raises_oserror(backend: Backend) -> None:
    server = echo_server(backend)

    with pytest.raises(OSError):
        backend.server(server.bound_address).start(Inbox().put_pair)


# -- ZeroMQ only ---------------------------------------------------------------------------------

MAX_MESSAGE_SIZE = 1024


def test_zmq_a_frame_over_twice_the_max_is_refused_and_the_server_keeps_serving() -> None:
    backend = ZmqBackend()
    context: zmq.Context[Any] = zmq.Context()
    raw = context.socket(zmq.DEALER)
    monitor = raw.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    try:
        seen = Inbox()
        server = backend.server(max_message_size=MAX_MESSAGE_SIZE)
        server.start(echo_to(server, seen))
        raw.connect(server.bound_address)

        raw.send(b"x" * (2 * MAX_MESSAGE_SIZE + 1))
        wait_for_monitor_event(monitor, zmq.EVENT_DISCONNECTED)  # ZeroMQ cut the connection
        replies = Inbox()
        backend.connect(server.bound_address, replies.put).send(b"small")

        assert replies.wait_for(1) == [b"echo:small"]
        assert [len(frame) for _, frame in seen.items()] == [len(b"small")]
    finally:
        raw.disable_monitor()
        monitor.close(linger=0)
        raw.close(linger=0)
        backend.close()
        context.term()


def test_zmq_a_frame_between_one_and_two_times_the_max_reaches_the_application() -> None:
    backend = ZmqBackend()
    try:
        seen = Inbox()
        server = backend.server(max_message_size=MAX_MESSAGE_SIZE)
        server.start(seen.put_pair)
        frame = b"x" * (MAX_MESSAGE_SIZE * 3 // 2)

        backend.connect(server.bound_address, Inbox().put).send(frame)

        assert [f for _, f in seen.wait_for(1)] == [frame]
    finally:
        backend.close()


def test_zmq_with_curve_keys_the_peer_is_authenticated_and_its_user_id_known() -> None:
    context: zmq.Context[Any] = zmq.Context()
    authenticator = ThreadAuthenticator(context)
    authenticator.start()
    authenticator.configure_curve(domain="*", location=zmq.auth.CURVE_ALLOW_ANY)
    server_public, server_secret = zmq.curve_keypair()
    client_public, client_secret = zmq.curve_keypair()
    server = ZmqServer(
        "tcp://127.0.0.1:*",
        context=context,
        curve=CurveServerConfig(secret_key=server_secret, public_key=server_public),
    )
    conn: ClientConnection | None = None
    try:
        seen = Inbox()
        server.start(echo_to(server, seen))
        replies = Inbox()
        client_keys = CurveClientConfig(client_public, client_secret, server_public)
        conn = zmq_connector(server.bound_address, context=context, curve=client_keys)(replies.put)

        conn.send(b"who am I?")

        assert replies.wait_for(1) == [b"echo:who am I?"]
        [(peer, _)] = seen.items()
        assert server.peer_user_id(peer) == client_public.decode()
        assert server.peer_user_id(b"someone else") is None
    finally:
        if conn is not None:
            conn.close()
        server.close()
        authenticator.stop()
        context.term()


def echo_to(server: Any, seen: Inbox | None = None) -> ServerFrameHandler:
    def on_frame(peer: bytes, frame: bytes) -> None:
        if seen is not None:
            seen.put((peer, frame))
        server.send(peer, b"echo:" + frame)

    return on_frame


def wait_for_monitor_event(monitor: zmq.Socket[Any], event: int) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while (remaining := deadline - time.monotonic()) > 0:
        if monitor.poll(int(remaining * 1000)) and recv_monitor_message(monitor)["event"] == event:
            return
    raise AssertionError(f"no monitor event {event} within {TIMEOUT_S} s")
