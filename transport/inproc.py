"""The transport interface inside one process, with network faults a test drives.

Every frame, in either direction, joins one FIFO of pending deliveries. With `auto=True` a
daemon thread delivers them in order; with `auto=False` nothing moves until the test calls
`deliver_one()`, so a simulation can run every actor to quiescence between two deliveries.
Faults (drop, duplicate, delay, reorder) are decided at delivery time from one seeded
`random.Random`, and partitions and kills are checked then too, so a seed replays exactly
(docs/ARCHITECTURE.md, "Time, randomness, determinism"; trio's FakeNet is the model).
"""

from __future__ import annotations

import collections
import errno
import functools
import itertools
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from transport.base import ClientFrameHandler, Connector, LostHandler, ServerFrameHandler

log = logging.getLogger(__name__)

DELIVER_ALL_LIMIT = 100_000
JOIN_TIMEOUT_S = 5.0


@dataclass
class Faults:
    """Per-frame fault probabilities, read at each delivery; a test may change them any time.

    `drop` discards the frame; `delay` puts it at the back of the FIFO instead; `reorder`
    swaps it with the next pending frame (that one is delivered now); `duplicate` delivers it
    twice. They are tried in that order, each with its own draw from the network's rng.
    """

    drop: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0
    reorder: float = 0.0


class InprocServer:
    """The bound end (the coordinator's ROUTER stand-in); made by `InprocNetwork.bind`."""

    def __init__(self, network: InprocNetwork, address: str) -> None:
        self._network = network
        self.address = address
        self.closed = False
        self.on_frame: ServerFrameHandler | None = None

    @property
    def bound_address(self) -> str:
        """The address clients connect to (the same name as `ZmqServer.bound_address`)."""
        return self.address

    def start(self, on_frame: ServerFrameHandler) -> None:
        """Begin delivering; frames that arrive before this are dropped like unbound ones."""
        self.on_frame = on_frame

    def send(self, peer: bytes, frame: bytes) -> None:
        """Queue `frame` for `peer`; an unknown peer is dropped (and counted)."""
        self._network._send_to_peer(self, peer, frame)

    def close(self) -> None:
        """Unbind the address so it can be bound again (a coordinator restart); idempotent."""
        self._network._unbind(self)


@dataclass(eq=False)
class InprocConnection:
    """One client end, labelled with the simulated `node` it belongs to."""

    network: InprocNetwork
    address: str
    node: str
    peer: bytes
    on_frame: ClientFrameHandler
    on_lost: LostHandler | None = None  # told when the server at `address` unbinds
    closed: bool = False

    def send(self, frame: bytes) -> None:
        """Queue one frame for whichever server is bound at `address` when it is delivered."""
        self.network._enqueue(_Delivery(self, frame, None))

    def close(self) -> None:
        """Drop the connection; frames pending to or from it are dropped. Idempotent."""
        self.network._disconnect(self)


@dataclass(frozen=True, slots=True)
class _Delivery:
    conn: InprocConnection
    frame: bytes
    sender: InprocServer | None  # None: from `conn` to the server bound at `conn.address`


class InprocNetwork:
    """A simulated network of one or more servers and their client connections."""

    def __init__(self, rng: random.Random | None = None, *, auto: bool = True) -> None:
        self.rng = rng if rng is not None else random.Random(0)
        self.faults = Faults()
        self.dropped = 0  # frames discarded: by fault, partition, closed end or unknown peer
        self.delivered = 0  # callback invocations (a duplicate counts twice)
        self.callback_errors = 0  # callbacks that raised (logged, never propagated)
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._pending: collections.deque[_Delivery] = collections.deque()
        self._servers: dict[str, InprocServer] = {}
        self._peers: dict[bytes, InprocConnection] = {}
        self._partitioned: set[str] = set()
        self._peer_numbers = itertools.count(1)
        # Serialises deliveries so callbacks never overlap, whoever drives; reentrant so a
        # callback that itself calls deliver_one does not deadlock.
        self._delivering = threading.RLock()
        self._closed = False
        self._thread: threading.Thread | None = None
        if auto:
            self._thread = threading.Thread(target=self._run, name="corral-inproc", daemon=True)
            self._thread.start()

    def bind(self, address: str) -> InprocServer:
        """Bind a server at `address`; raises `OSError` if one is bound there already."""
        with self._lock:
            if address in self._servers:
                raise OSError(errno.EADDRINUSE, f"address already bound: {address!r}")
            server = InprocServer(self, address)
            self._servers[address] = server
            return server

    def connector(self, address: str, node: str = "") -> Connector:
        """A `Connector` whose connections go to `address` and belong to simulated `node`."""

        def connect(
            on_frame: ClientFrameHandler, on_lost: LostHandler | None = None
        ) -> InprocConnection:
            with self._lock:
                peer = b"inproc-%d" % next(self._peer_numbers)
                conn = InprocConnection(self, address, node, peer, on_frame, on_lost)
                self._peers[peer] = conn
                return conn

        return connect

    def partition(self, node: str) -> None:
        """Cut `node` (a connection label, or a server address) off until `heal(node)`."""
        with self._lock:
            self._partitioned.add(node)

    def heal(self, node: str) -> None:
        """Undo `partition(node)`; frames dropped meanwhile stay lost."""
        with self._lock:
            self._partitioned.discard(node)

    def kill(self, node: str) -> None:
        """Close every connection labelled `node`; their pending frames are dropped."""
        with self._lock:
            for conn in [c for c in self._peers.values() if c.node == node]:
                conn.closed = True
                del self._peers[conn.peer]

    def pending(self) -> int:
        """How many frames wait in the FIFO."""
        with self._lock:
            return len(self._pending)

    def deliver_one(self) -> bool:
        """Take the next pending frame and deliver, drop or requeue it; False if none waits.

        The callback runs on the calling thread, outside the network's lock, so it may send.
        """
        with self._delivering:
            with self._lock:
                if not self._pending:
                    return False
                deliver, copies = self._decide(self._pending.popleft())
                self.delivered += copies
            if deliver is None:
                return True
            for _ in range(copies):
                try:
                    deliver()
                except Exception:
                    log.exception("inproc frame handler raised; frame dropped")
                    with self._lock:
                        self.callback_errors += 1
            return True

    def deliver_all(self, limit: int = DELIVER_ALL_LIMIT) -> int:
        """Deliver until nothing is pending or `limit` steps are taken; return the steps."""
        steps = 0
        while steps < limit and self.deliver_one():
            steps += 1
        return steps

    def close(self) -> None:
        """Stop the delivery thread (with `auto=True`) and drop what is pending; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self.dropped += len(self._pending)
            self._pending.clear()
            self._wakeup.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(JOIN_TIMEOUT_S)

    # -- internals: called by servers and connections, or under the lock -----------------------

    def _decide(self, item: _Delivery) -> tuple[Callable[[], None] | None, int]:
        """Under the lock: route `item`, fresh off the FIFO, through the faults.

        Returns the delivery to make and how many times (0: dropped or requeued).
        """
        faults = self.faults
        deliver = self._route(item)
        if deliver is None or self.rng.random() < faults.drop:
            self.dropped += 1
            return None, 0
        if self.rng.random() < faults.delay:
            self._pending.append(item)
            return None, 0
        if self._pending and self.rng.random() < faults.reorder:
            item, self._pending[0] = self._pending[0], item
            deliver = self._route(item)
            if deliver is None:
                self.dropped += 1
                return None, 0
        return deliver, 2 if self.rng.random() < faults.duplicate else 1

    def _route(self, item: _Delivery) -> Callable[[], None] | None:
        conn = item.conn
        if conn.closed or conn.node in self._partitioned or conn.address in self._partitioned:
            return None
        if item.sender is None:
            server = self._servers.get(conn.address)
            if server is None or server.on_frame is None:
                return None
            return functools.partial(server.on_frame, conn.peer, item.frame)
        if item.sender.closed:
            return None
        return functools.partial(conn.on_frame, item.frame)

    def _enqueue(self, item: _Delivery) -> None:
        with self._lock:
            if self._closed or item.conn.closed:
                self.dropped += 1
                return
            self._pending.append(item)
            self._wakeup.notify()

    def _send_to_peer(self, server: InprocServer, peer: bytes, frame: bytes) -> None:
        with self._lock:
            conn = self._peers.get(peer)
            if self._closed or server.closed or conn is None or conn.address != server.address:
                log.debug("inproc server %s: unknown peer %r, frame dropped", server.address, peer)
                self.dropped += 1
                return
            self._pending.append(_Delivery(conn, frame, server))
            self._wakeup.notify()

    def _unbind(self, server: InprocServer) -> None:
        """The server goes (a coordinator stops or crashes): its watched connections are told,
        as a ZeroMQ peer's socket monitor sees the TCP connection drop."""
        with self._lock:
            server.closed = True
            if self._servers.get(server.address) is server:
                del self._servers[server.address]
            lost = [
                conn.on_lost
                for conn in self._peers.values()
                if conn.address == server.address and conn.on_lost is not None
            ]
        for on_lost in lost:
            on_lost()

    def _disconnect(self, conn: InprocConnection) -> None:
        with self._lock:
            conn.closed = True
            self._peers.pop(conn.peer, None)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._wakeup.wait_for(lambda: self._pending or self._closed)
                if self._closed:
                    return
            self.deliver_one()
