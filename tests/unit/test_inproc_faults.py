"""The in-process network's fault hooks, stepped one delivery at a time with a seeded rng."""

from __future__ import annotations

import random

import pytest

from transport.inproc import InprocNetwork, InprocServer

ADDRESS = "inproc://coordinator"


class Harness:
    """A manual network, a server recording `(peer, frame)` and named client connections."""

    def __init__(self, seed: int = 0) -> None:
        self.network = InprocNetwork(random.Random(seed), auto=False)
        self.at_server: list[tuple[bytes, bytes]] = []
        self.at_clients: list[tuple[str, bytes]] = []
        self.server = self.bind()

    def bind(self) -> InprocServer:
        server = self.network.bind(ADDRESS)
        server.start(lambda peer, frame: self.at_server.append((peer, frame)))
        return server

    def connect(self, name: str, node: str = "") -> object:
        connect = self.network.connector(ADDRESS, node=node or name)
        return connect(lambda frame: self.at_clients.append((name, frame)))

    def frames_at_server(self) -> list[bytes]:
        return [frame for _, frame in self.at_server]


@pytest.fixture
def net() -> Harness:
    return Harness()


def test_nothing_moves_until_the_test_delivers(net: Harness) -> None:
    conn = net.connect("a")
    conn.send(b"one")

    assert net.network.pending() == 1
    assert net.at_server == []
    assert net.network.deliver_one() is True
    assert net.frames_at_server() == [b"one"]
    assert net.network.deliver_one() is False


def test_frames_are_delivered_in_send_order_as_the_same_bytes(net: Harness) -> None:
    conn = net.connect("a")
    frames = [b"%d" % n for n in range(10)]
    for frame in frames:
        conn.send(frame)

    assert net.network.deliver_all() == 10
    assert net.frames_at_server() == frames
    assert net.at_server[0][1] is frames[0]


def test_drop_discards_the_frame_and_counts_it(net: Harness) -> None:
    conn = net.connect("a")
    net.network.faults.drop = 1.0
    for n in range(3):
        conn.send(b"%d" % n)

    net.network.deliver_all()

    assert net.at_server == []
    assert net.network.dropped == 3
    assert net.network.pending() == 0


def test_duplicate_delivers_the_frame_twice(net: Harness) -> None:
    conn = net.connect("a")
    net.network.faults.duplicate = 1.0
    conn.send(b"a")
    conn.send(b"b")

    net.network.deliver_all()

    assert net.frames_at_server() == [b"a", b"a", b"b", b"b"]


def test_reorder_swaps_the_frame_with_the_next_pending_one(net: Harness) -> None:
    conn = net.connect("a")
    net.network.faults.reorder = 1.0
    conn.send(b"a")
    conn.send(b"b")

    assert net.network.deliver_one() is True

    assert net.frames_at_server() == [b"b"]
    net.network.deliver_all()
    assert net.frames_at_server() == [b"b", b"a"]


def test_delay_puts_the_frame_at_the_back_of_the_queue(net: Harness) -> None:
    conn = net.connect("a")
    conn.send(b"a")
    conn.send(b"b")
    net.network.faults.delay = 1.0

    assert net.network.deliver_one() is True

    assert net.at_server == []
    assert net.network.pending() == 2
    net.network.faults.delay = 0.0
    net.network.deliver_all()
    assert net.frames_at_server() == [b"b", b"a"]


def test_a_partitioned_node_neither_sends_nor_receives_until_healed(net: Harness) -> None:
    cut = net.connect("cut")
    other = net.connect("other")
    cut.send(b"from cut")
    other.send(b"from other")
    net.network.deliver_all()
    (cut_peer, _), (other_peer, _) = net.at_server
    net.network.partition("cut")

    cut.send(b"lost")
    net.server.send(cut_peer, b"lost")
    net.server.send(other_peer, b"kept")
    net.network.deliver_all()

    assert net.frames_at_server() == [b"from cut", b"from other"]
    assert net.at_clients == [("other", b"kept")]
    assert net.network.dropped == 2

    net.network.heal("cut")
    cut.send(b"back")
    net.server.send(cut_peer, b"welcome")
    net.network.deliver_all()
    assert net.frames_at_server()[-1] == b"back"
    assert net.at_clients[-1] == ("cut", b"welcome")


def test_partitioning_the_server_address_cuts_it_off_from_everyone(net: Harness) -> None:
    conn = net.connect("a")
    conn.send(b"hello")
    net.network.deliver_all()
    [(peer, _)] = net.at_server
    net.network.partition(ADDRESS)

    conn.send(b"lost")
    net.server.send(peer, b"lost")
    net.network.deliver_all()

    assert net.frames_at_server() == [b"hello"]
    assert net.at_clients == []


def test_kill_closes_every_connection_of_the_node_and_drops_their_frames(net: Harness) -> None:
    first = net.connect("first", node="worker-1")
    second = net.connect("second", node="worker-1")
    survivor = net.connect("survivor", node="worker-2")
    for conn in (first, second, survivor):
        conn.send(b"hello")
    net.network.deliver_all()
    peers = [peer for peer, _ in net.at_server]
    first.send(b"pending")
    for peer in peers:
        net.server.send(peer, b"reply")

    net.network.kill("worker-1")
    net.network.deliver_all()
    first.send(b"after kill")
    net.network.deliver_all()

    assert net.frames_at_server() == [b"hello"] * 3
    assert net.at_clients == [("survivor", b"reply")]
    assert first.closed and second.closed and not survivor.closed
    assert net.network.dropped == 4


def test_a_frame_to_a_closed_connection_or_an_unbound_server_is_dropped(net: Harness) -> None:
    conn = net.connect("a")
    conn.send(b"hello")
    net.network.deliver_all()
    [(peer, _)] = net.at_server
    net.server.send(peer, b"reply")
    conn.close()
    net.network.deliver_all()
    stray = net.network.connector("inproc://nobody")(lambda frame: None)

    stray.send(b"anyone?")
    net.server.send(b"no-such-peer", b"x")
    net.network.deliver_all()

    assert net.at_clients == []
    assert net.network.dropped == 3


def test_a_rebound_server_hears_old_connections_under_their_old_peer_ids(net: Harness) -> None:
    conn = net.connect("a")
    conn.send(b"before")
    net.network.deliver_all()
    [(peer, _)] = net.at_server
    net.server.close()
    conn.send(b"while down")
    net.network.deliver_all()

    restarted = net.bind()
    conn.send(b"after")
    net.network.deliver_all()
    restarted.send(peer, b"hello again")
    net.network.deliver_all()

    assert net.at_server == [(peer, b"before"), (peer, b"after")]
    assert net.at_clients == [("a", b"hello again")]


def test_binding_a_bound_address_raises_oserror(net: Harness) -> None:
    with pytest.raises(OSError):
        net.network.bind(ADDRESS)


def test_a_callback_that_raises_is_counted_and_delivery_goes_on(net: Harness) -> None:
    failing = net.network.connector(ADDRESS)(lambda frame: 1 / 0)
    failing.send(b"hello")
    net.network.deliver_all()
    [(peer, _)] = net.at_server

    net.server.send(peer, b"boom")
    net.server.send(peer, b"boom")

    assert net.network.deliver_all() == 2
    assert net.network.callback_errors == 2


def run_faulty_exchange(seed: int) -> list[tuple[str, bytes]]:
    """Three clients and an echoing server under every fault at once; the delivery log."""
    net = Harness(seed)
    log: list[tuple[str, bytes]] = []

    def echo(peer: bytes, frame: bytes) -> None:
        log.append(("server", frame))
        net.server.send(peer, frame)

    net.server.start(echo)
    conns = [
        net.network.connector(ADDRESS, node=name)(lambda frame, n=name: log.append((n, frame)))
        for name in ("a", "b", "c")
    ]
    net.network.faults.drop = 0.1
    net.network.faults.duplicate = 0.1
    net.network.faults.delay = 0.1
    net.network.faults.reorder = 0.2
    for n in range(100):
        conns[n % 3].send(b"%d" % n)
    net.network.deliver_all()
    assert net.network.pending() == 0
    return log


def test_the_same_seed_replays_the_same_delivery_order() -> None:
    first = run_faulty_exchange(seed=1234)

    assert run_faulty_exchange(seed=1234) == first
    assert run_faulty_exchange(seed=4321) != first
    at_server = [int(frame) for who, frame in first if who == "server"]
    assert at_server != sorted(at_server)  # the faults did reorder something


def test_a_watched_connection_is_told_when_its_server_goes_and_no_other_is(net: Harness) -> None:
    # Given a watched connection to the server, a closed one, and one to another address
    told: list[str] = []
    watched = net.network.connector(ADDRESS, node="w")(lambda f: None, lambda: told.append("w"))
    closed = net.network.connector(ADDRESS, node="c")(lambda f: None, lambda: told.append("c"))
    closed.close()
    other = net.network.connector("inproc://standby", node="o")
    other(lambda f: None, lambda: told.append("o"))
    net.connect("unwatched")
    # When the server unbinds (its coordinator stopped or crashed)
    net.server.close()
    # Then only the live watched connection to it is told, as a socket monitor would
    assert told == ["w"] and not watched.closed
