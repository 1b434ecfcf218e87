"""One thread that alone owns one ZeroMQ socket; shared by the server and the client transports.

ZeroMQ sockets are not thread-safe: touching one socket from two threads crashes at random, hours
later (pyzmq#2043, #2094). So each socket gets a loop thread that is the only code to call it.
Other threads hand outbound messages over a `queue.SimpleQueue` and wake the loop through an
`os.pipe()` registered in the same `zmq.Poller`, the way pyzmq's `zmq.auth.thread` drives its
sockets. The socket is created and configured by the caller and handed over before the thread
starts (`Thread.start` is the memory barrier ZeroMQ asks for when a socket changes threads).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

log = logging.getLogger(__name__)

HIGH_WATER_MARK_MESSAGES = 100_000
HEARTBEAT_INTERVAL_MS = 5_000
HEARTBEAT_TIMEOUT_MS = 15_000
HEARTBEAT_TTL_MS = 15_000
RECV_BATCH_MESSAGES = 1_000
JOIN_TIMEOUT_S = 5.0

MessageHandler = Callable[[list[Any]], None]


def apply_common_options(socket: zmq.Socket[bytes]) -> None:
    """Set the options both ends need, each for a stated reason."""
    # LINGER=0: close() must never wait on frames a dead peer will not take. The protocol
    # recovers lost frames (leases, retries), so discarding them at shutdown is safe.
    socket.setsockopt(zmq.LINGER, 0)
    # 100k messages each way is ~10 s of the 10k jobs/s goal: it absorbs bursts, and past it
    # a NOBLOCK send fails fast (EAGAIN) and the frame is dropped instead of stalling the loop.
    socket.setsockopt(zmq.SNDHWM, HIGH_WATER_MARK_MESSAGES)
    socket.setsockopt(zmq.RCVHWM, HIGH_WATER_MARK_MESSAGES)
    # ZMTP heartbeats: a peer that vanishes without a FIN (SIGKILL behind NAT, cable pulled) is
    # noticed within 15 s and its pipe freed; a 5 s ping keeps idle NAT entries alive.
    socket.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_INTERVAL_MS)
    socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
    socket.setsockopt(zmq.HEARTBEAT_TTL, HEARTBEAT_TTL_MS)


LOST_EVENTS = zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED


class SocketLoop:
    """Own `socket` on a private thread: send what other threads queue, hand inbound to a callback.

    `on_message(parts)` runs on the loop thread with one multipart message (`bytes` parts, or
    `zmq.Frame` parts when `copy=False`, which is how ZAP metadata such as User-Id is read).
    When `owned_context` is given, the loop terminates it after closing the socket. With
    `on_disconnected`, a socket monitor on the same thread calls it once, when the connection
    of the socket first drops (the peer died, or missed its ZMTP heartbeats) or cannot be made
    (refused: nobody listens there, so a peer with other endpoints moves on at once instead
    of waiting for its hello to time out).
    """

    def __init__(
        self,
        socket: zmq.Socket[bytes],
        on_message: MessageHandler,
        *,
        name: str,
        copy: bool = True,
        owned_context: zmq.Context[zmq.Socket[bytes]] | None = None,
        on_disconnected: Callable[[], None] | None = None,
    ) -> None:
        self._socket = socket
        self._on_disconnected = on_disconnected
        self._lost_told = False
        self._monitor: zmq.Socket[bytes] | None = None
        if on_disconnected is not None:
            self._monitor = socket.get_monitor_socket(LOST_EVENTS)
        self._on_message = on_message
        self._copy = copy
        self._owned_context = owned_context
        self._outbox: queue.SimpleQueue[list[bytes]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        # Set by senders before writing the wake byte, cleared by the loop before it drains the
        # outbox: one pipe write per burst of sends, not one per frame, and no wake is lost.
        self._wake_pending = False
        # False only while the loop is about to wait in poll(). A sender that finds it True
        # skips the wake byte: the loop looks at the outbox again before it next waits. Under
        # load this saves most pipe writes, each a syscall that gives up the GIL.
        self._awake = True
        self._stopping = False
        self._closed = False
        self._fd_lock = threading.Lock()  # the write end may be closed while a sender writes
        self._close_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def send(self, parts: list[bytes]) -> None:
        """Queue one multipart message; never blocks, safe from any thread."""
        if self._closed:
            log.debug("%s: closed, dropped an outbound message", self._thread.name)
            return
        self._outbox.put(parts)
        if not self._awake and not self._wake_pending:
            self._wake_pending = True
            self._wake()

    def close(self) -> None:
        """Stop the loop, which closes the socket; idempotent, callable from the loop itself."""
        with self._close_lock:
            first_call, self._closed = not self._closed, True
        if first_call:
            self._stopping = True
            self._wake()
        if threading.current_thread() is self._thread:
            return  # called from a callback: the loop exits and cleans up when it returns
        # Joined on every call, so a close() that follows one made from a callback still
        # returns only once the socket is closed.
        self._thread.join(JOIN_TIMEOUT_S)
        if self._thread.is_alive():
            log.warning(
                "%s: did not stop within %s s (a callback is blocking); its socket leaks",
                self._thread.name,
                JOIN_TIMEOUT_S,
            )

    def _wake(self) -> None:
        with self._fd_lock:
            if self._wake_w >= 0:
                os.write(self._wake_w, b"\0")

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        if self._monitor is not None:
            poller.register(self._monitor, zmq.POLLIN)
        try:
            while not self._stopping:
                # Advertise the wait before the last look at the outbox: a frame queued after
                # that look sees `_awake` False and writes the wake byte (no wake is lost).
                self._awake = False
                # Frames waiting: only a look at the socket (timeout 0), never a wait.
                ready = dict(poller.poll(None if self._outbox.empty() else 0))
                self._awake = True
                if self._wake_r in ready:
                    os.read(self._wake_r, 4096)
                    self._wake_pending = False
                self._flush_outbox()
                if self._socket in ready:
                    self._drain_inbound()
                if self._monitor is not None and self._monitor in ready:
                    self._read_monitor()
        except Exception:
            log.exception("%s: I/O loop failed; the transport is closed", self._thread.name)
        finally:
            self._closed = True
            if self._monitor is not None:
                self._socket.disable_monitor()
                self._monitor.close(linger=0)
            self._socket.close(linger=0)
            with self._fd_lock:
                os.close(self._wake_w)
                self._wake_w = -1
            os.close(self._wake_r)
            if self._owned_context is not None:
                self._owned_context.term()

    def _flush_outbox(self) -> None:
        while not self._outbox.empty():
            parts = self._outbox.get_nowait()  # this thread is the only consumer
            try:
                self._socket.send_multipart(parts, zmq.NOBLOCK)
            except zmq.ZMQError as exc:
                if exc.errno == zmq.EHOSTUNREACH:  # the peer has gone: routine, not news
                    log.debug("%s: dropped a frame: %s", self._thread.name, exc.strerror)
                else:  # EAGAIN: the peer's high-water mark is full; it is not keeping up
                    log.warning("%s: dropped a frame: %s", self._thread.name, exc.strerror)

    def _read_monitor(self) -> None:
        assert self._monitor is not None and self._on_disconnected is not None
        while self._monitor.poll(0):
            event = recv_monitor_message(self._monitor)
            if event["event"] & LOST_EVENTS and not (self._stopping or self._lost_told):
                self._lost_told = True  # once: a dropped connection then retries, refused
                try:
                    self._on_disconnected()
                except Exception:
                    log.exception("%s: disconnect handler raised", self._thread.name)

    def _drain_inbound(self) -> None:
        # Up to 1,000 messages per poll: a poll costs more than a NOBLOCK recv, and the cap
        # lets queued outbound frames go out between batches.
        for _ in range(RECV_BATCH_MESSAGES):
            if self._stopping:
                return
            try:
                parts = self._socket.recv_multipart(zmq.NOBLOCK, copy=self._copy)
            except zmq.Again:
                return
            try:
                self._on_message(parts)
            except Exception:
                log.exception("%s: frame handler raised; frame dropped", self._thread.name)
            # The callback often runs the whole request on this thread (an idle actor handles
            # a tell inline) and leaves its reply here: send it now, not after the batch.
            if not self._outbox.empty():
                self._flush_outbox()
