"""The transport seam: one interface, a ZeroMQ and an in-process implementation.

A server (the coordinator's ROUTER side) sees `(peer, frame)` pairs, where `peer` is an opaque
bytes routing id fixed for the life of one connection. A client connection (the DEALER side)
sees frames only. Callbacks run on the transport's own I/O thread (ZeroMQ) or on the thread that
drives the in-process network; they must not block. `send` is safe from any thread, never
blocks, and drops (with a log line) what cannot be delivered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

ServerFrameHandler = Callable[[bytes, bytes], None]
ClientFrameHandler = Callable[[bytes], None]
LostHandler = Callable[[], None]


class ServerTransport(Protocol):
    def start(self, on_frame: ServerFrameHandler) -> None:
        """Begin delivering inbound frames to `on_frame(peer, frame)`."""
        ...

    def send(self, peer: bytes, frame: bytes) -> None:
        """Queue one frame for one peer."""
        ...

    def close(self) -> None:
        """Stop delivering and release the socket; idempotent."""
        ...


class ClientConnection(Protocol):
    def send(self, frame: bytes) -> None:
        """Queue one frame for the server."""
        ...

    def close(self) -> None:
        """Drop the connection; a new one gets a new peer id at the server. Idempotent."""
        ...


class Requester(Protocol):
    """The client side of request/reply (transport/requesters.py)."""

    @property
    def closed(self) -> bool: ...

    def request(self, body: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """Send the request map `body`; return the reply with its `rid`, or None if none came
        within `timeout` s (and then the request never runs later). Thread-safe."""
        ...

    def close(self) -> None:
        """Close; later requests get None. Idempotent."""
        ...


class Connector(Protocol):
    def __call__(
        self, on_frame: ClientFrameHandler, on_lost: LostHandler | None = None
    ) -> ClientConnection:
        """Open a new connection whose inbound frames go to `on_frame(frame)`. With
        `on_lost`, watch it: `on_lost()` is called (on the transport's thread, once or more)
        when the connection is seen to drop, so a peer with other coordinators to try moves
        on at once. Connectors of a single endpoint are called without it."""
        ...
