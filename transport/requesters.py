"""Request/reply for clients: one request map out, the reply with the same `rid` back.

`ZmqRequester` gives each calling thread a DEALER socket of its own. The thread sends on it,
polls it and reads its reply itself, so a reply reaches the caller with no hand-off between
threads: a client behind an I/O thread paid two (caller -> I/O thread -> caller), 20 to 100 us
each on a 2-core VM, and a sequential enqueue took ~420 us where a plain socket took ~320 us.
Every socket is still used by one thread only, as everywhere in corral (pyzmq#2043, #2094).

`ConnectorRequester` does the same over any `Connector` (the in-process network of a
simulation), waiting on an event, or pumping the simulation when given a `pump`.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from transport import codec
from transport._zmq_loop import LOST_EVENTS
from transport.base import ClientConnection, Connector
from transport.errors import CorralError
from transport.zmq import connected_dealer

if TYPE_CHECKING:
    from transport.zmq import CurveClientConfig

log = logging.getLogger(__name__)

Reply = dict[str, Any]


class ZmqRequester:
    """Requests over one DEALER socket per calling thread (made on its first request).

    A request that times out closes its thread's socket (LINGER 0 drops what it still queues),
    so the request cannot run later and its late reply is never taken for a newer one. A
    thread's socket is closed when the thread ends, or by `close()`.

    `watch` (a client of several coordinators, transport/failover.py): a request gives up at
    once when its connection drops or is refused (a socket monitor polled with the socket), so
    a dead coordinator costs a failover milliseconds, not a whole attempt's timeout.
    """

    def __init__(
        self,
        address: str,
        *,
        context: zmq.Context[Any] | None = None,
        curve: CurveClientConfig | None = None,
        watch: bool = False,
    ) -> None:
        self._address = address
        self._watch = watch
        self._curve = curve
        self._owns_context = context is None
        self._context: zmq.Context[Any] = context if context is not None else zmq.Context()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[_ThreadSocket] = set()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def open_sockets(self) -> int:
        """Sockets open now: one per thread that has made a request and is still alive."""
        with self._lock:
            return len(self._open)

    def request(self, body: Reply, timeout: float) -> Reply | None:
        """Send `body`; its reply, or None when none came within `timeout` seconds."""
        held = self._take_socket()
        if held is None:
            return None  # closed
        reply = None
        try:
            reply = self._exchange(held, body, timeout)
        finally:
            with self._lock:
                held.in_use = False
                closing = self._closed
            if reply is None or closing:
                self._discard(held)  # no reply: this request must never run later
        return reply

    def _exchange(self, held: _ThreadSocket, body: Reply, timeout: float) -> Reply | None:
        rid = body["rid"]
        socket, monitor = held.socket, held.monitor
        poller = zmq.Poller()
        poller.register(socket, zmq.POLLIN)
        if monitor is not None:
            _lost(monitor)  # what happened before this request says nothing of it
            poller.register(monitor, zmq.POLLIN)
        try:
            socket.send(codec.encode(body), zmq.NOBLOCK)
            # A socket poll is I/O time, not a node's clock: nothing here is simulated.
            deadline = time.monotonic() + timeout  # noqa: TID251
            while True:
                remaining = deadline - time.monotonic()  # noqa: TID251
                ready = dict(poller.poll(max(1, round(remaining * 1000)))) if remaining > 0 else {}
                if not ready:
                    return None
                if monitor is not None and monitor in ready and _lost(monitor):
                    return None  # the connection dropped or was refused: nobody will answer
                if socket not in ready:
                    continue
                reply = _decoded(socket.recv(zmq.NOBLOCK))
                if reply is not None and reply.get("rid") == rid:
                    return reply
        except zmq.ZMQError as exc:
            log.warning("request to %s failed: %s", self._address, exc.strerror)
            return None

    def close(self) -> None:
        """Close the sockets; a thread still waiting closes its own when its wait ends."""
        with self._lock:
            self._closed = True
            idle = [held for held in self._open if not held.in_use]
        for held in idle:
            self._discard(held)
        self._terminate_if_done()

    def _take_socket(self) -> _ThreadSocket | None:
        """This thread's socket, marked in use; None once closed."""
        if self._closed:
            return None
        held: _ThreadSocket | None = getattr(self._local, "held", None)
        if held is None or held.socket.closed:
            held = self._open_socket()
            self._local.held = held
            # The socket closes when this thread ends, which drops its thread-local values.
            self._local.owner = owner = _Owner()
            closer = weakref.finalize(owner, self._discard, held)
            # Not at interpreter exit: the process's end closes every socket (LINGER 0), and a
            # monitor's teardown there, while another thread may still use the socket, can
            # block the exit for good.
            closer.atexit = False
        with self._lock:
            closed = self._closed
            held.in_use = not closed
        if closed:  # close() ran meanwhile, before this socket was in use
            self._discard(held)
            return None
        return held

    def _open_socket(self) -> _ThreadSocket:
        socket = connected_dealer(self._context, self._address, self._curve)
        monitor = socket.get_monitor_socket(LOST_EVENTS) if self._watch else None
        held = _ThreadSocket(socket, monitor)
        with self._lock:
            self._open.add(held)
        return held

    def _discard(self, held: _ThreadSocket) -> None:
        with self._lock:
            self._open.discard(held)
        if held.monitor is not None and not held.monitor.closed:
            held.socket.disable_monitor()
            held.monitor.close(linger=0)
        if not held.socket.closed:
            held.socket.close(linger=0)
        held.in_use = False
        self._terminate_if_done()

    def _terminate_if_done(self) -> None:
        with self._lock:
            done = self._closed and not self._open and self._owns_context
            self._owns_context = self._owns_context and not done
        if done:
            self._context.term()


class _Owner:
    """Lives in one thread's local storage only: collected when that thread ends."""


class _ThreadSocket:
    """One thread's socket; `in_use` while that thread waits on it."""

    __slots__ = ("in_use", "monitor", "socket")

    def __init__(self, socket: zmq.Socket[bytes], monitor: zmq.Socket[bytes] | None) -> None:
        self.socket = socket
        self.monitor = monitor  # with `watch`: the socket's drop and refusal events
        self.in_use = False


def _lost(monitor: zmq.Socket[bytes]) -> bool:
    """Read every pending event of `monitor`; True if one says the connection is gone."""
    lost = False
    while monitor.poll(0):
        lost = bool(recv_monitor_message(monitor)["event"] & LOST_EVENTS) or lost
    return lost


class ConnectorRequester:
    """Requests over one `Connector` connection, replies matched by `rid` (thread-safe).

    With `pump` (a simulation: one step of the network and clock, returning virtual now) the
    wait drives the simulation and `timeout` is virtual seconds.
    """

    def __init__(self, connector: Connector, pump: Callable[[], float] | None = None) -> None:
        self._connector = connector
        self._pump = pump
        self._lock = threading.Lock()
        self._waiting: dict[Any, list[Any]] = {}
        self._connection: ClientConnection | None = connector(self._on_frame)

    def _on_frame(self, frame: bytes) -> None:
        reply = _decoded(frame)
        if reply is None:
            return
        with self._lock:
            slot = self._waiting.get(reply.get("rid"))
        if slot is not None:
            slot.append(reply)
            slot[0].set()

    def request(self, body: Reply, timeout: float) -> Reply | None:
        """Send `body`; its reply, or None when none came within `timeout` seconds."""
        if self._connection is None:
            return None
        rid = body["rid"]
        event = threading.Event()
        slot: list[Any] = [event]
        with self._lock:
            self._waiting[rid] = slot
        try:
            self._connection.send(codec.encode(body))
            if self._pump is not None:
                started = self._pump()
                while not event.is_set() and self._pump() - started <= timeout:
                    pass
            else:
                event.wait(timeout)
        finally:
            with self._lock:
                self._waiting.pop(rid, None)
        if len(slot) > 1:
            return slot[1]  # type: ignore[no-any-return]
        # A new connection drops what the old one still queues, so this request cannot run
        # later, after the caller was told it failed.
        old, self._connection = self._connection, self._connector(self._on_frame)
        if old is not None:
            old.close()
        return None

    @property
    def closed(self) -> bool:
        return self._connection is None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _decoded(frame: bytes) -> Reply | None:
    try:
        return codec.decode(frame)
    except CorralError:
        log.debug("undecodable reply dropped")
        return None
