"""The coordinator's transport seen by its observers: frame counts, and in-process peers.

`Traffic.wrap` puts a thin layer around the coordinator's `ServerTransport`:
- it counts frames and bytes each way (read by the metrics exporter at scrape time);
- it delivers frames addressed to an *in-process peer* (the dashboard, the metrics exporter)
  to that peer's callback instead of the socket. Such a peer sends requests straight to the
  owning actor (`Inbound(peer, request)`), and the actor answers through the usual outbox,
  so the dashboard reads worker sessions the way `stats` does, without a socket, without
  keys, and without an actor ever blocking on it.

In-process peer ids start with a zero byte and are longer than five bytes: ZeroMQ reserves
routing ids starting with a zero byte for the 5-byte ids it generates, and a peer cannot
choose one, so no socket peer can ever be mistaken for an in-process one.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

from transport.base import ServerFrameHandler, ServerTransport

LOCAL_PEER_PREFIX = b"\x00corral-local-"

LocalHandler = Callable[[bytes], None]


class Traffic:
    """Counters of one coordinator's wire traffic, and its in-process peers. Thread-safe.

    Inbound counts are kept on the transport's I/O thread (one writer); outbound sends come
    from every actor, so they take a lock (about 0.1 us uncontended, six sends per job).
    """

    def __init__(self) -> None:
        self.frames_in = 0
        self.bytes_in = 0
        self.frames_out = 0
        self.bytes_out = 0
        self._lock = threading.Lock()
        self._local: dict[bytes, LocalHandler] = {}
        self._ids = itertools.count(1)

    def wrap(self, transport: ServerTransport) -> ServerTransport:
        """The transport the coordinator should use: counted, with local peers routed."""
        return _CountedTransport(transport, self)

    def add_local_peer(self, on_frame: LocalHandler) -> bytes:
        """Register an in-process peer; frames sent to the returned id go to `on_frame`."""
        peer = LOCAL_PEER_PREFIX + str(next(self._ids)).encode()
        with self._lock:
            self._local = {**self._local, peer: on_frame}
        return peer

    def remove_local_peer(self, peer: bytes) -> None:
        with self._lock:
            self._local = {key: value for key, value in self._local.items() if key != peer}

    def snapshot(self) -> dict[str, int]:
        """The four counters at one instant."""
        with self._lock:
            return {
                "frames_in": self.frames_in,
                "bytes_in": self.bytes_in,
                "frames_out": self.frames_out,
                "bytes_out": self.bytes_out,
            }


class _CountedTransport:
    """A ServerTransport that counts, routes local peers, and forwards everything else."""

    def __init__(self, inner: ServerTransport, traffic: Traffic) -> None:
        self._inner = inner
        self._traffic = traffic

    def start(self, on_frame: ServerFrameHandler) -> None:
        traffic = self._traffic

        def counted(peer: bytes, frame: bytes) -> None:
            traffic.frames_in += 1  # only the I/O thread writes these two
            traffic.bytes_in += len(frame)
            on_frame(peer, frame)

        self._inner.start(counted)

    def send(self, peer: bytes, frame: bytes) -> None:
        traffic = self._traffic
        local = traffic._local  # replaced whole on change, so one read is a consistent view
        if local:
            handler = local.get(peer)
            if handler is not None:
                handler(frame)
                return
        with traffic._lock:
            traffic.frames_out += 1
            traffic.bytes_out += len(frame)
        self._inner.send(peer, frame)

    def close(self) -> None:
        self._inner.close()

    def __getattr__(self, name: str) -> Any:
        # Anything else the coordinator asks of its transport (bound_address, peer_user_id).
        return getattr(self._inner, name)
