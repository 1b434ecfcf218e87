"""The ZeroMQ transport: the coordinator's ROUTER (`ZmqServer`) and the peers' DEALERs.

PROTOCOL.md §1: one ROUTER bound by the coordinator, one DEALER per worker or client, one frame
per message on the DEALER side and `[routing-id, frame]` on the ROUTER side, no delimiter frame.
Each socket lives on its own `SocketLoop` thread; everything here only configures sockets and
translates between ZeroMQ messages and the `transport.base` interface.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import zmq

from transport import codec
from transport._zmq_loop import SocketLoop, apply_common_options
from transport.base import ClientFrameHandler, Connector, LostHandler, ServerFrameHandler
from transport.endpoints import Endpoints

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024  # PROTOCOL.md §1: 1 MiB
ZAP_DOMAIN = "corral"
# Enough for every live peer of one coordinator; past it the least recently heard is forgotten
# (ROUTER never reports a disconnect, so without a bound the map would grow forever).
MAX_TRACKED_USER_IDS = 65_536
# A watched peer (one with other coordinators to fail over to) pings every second and gives
# up after 3 s of silence: a frozen (SIGSTOPped) leader is left in ~3 s, not the common 15 s.
WATCHED_HEARTBEAT_INTERVAL_MS = 1_000
WATCHED_HEARTBEAT_TIMEOUT_MS = 3_000


@dataclass(frozen=True, slots=True)
class CurveServerConfig:
    """The coordinator's CURVE key pair (Z85 text or 32 raw bytes each)."""

    secret_key: bytes
    public_key: bytes


@dataclass(frozen=True, slots=True)
class CurveClientConfig:
    """A peer's CURVE key pair and the coordinator public key it expects (Z85 or raw)."""

    public_key: bytes
    secret_key: bytes
    server_public_key: bytes


class ZmqServer:
    """The coordinator end: one ROUTER socket, bound in `start`, owned by one loop thread."""

    def __init__(
        self,
        bind: str,
        *,
        context: zmq.Context[Any] | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        curve: CurveServerConfig | None = None,
    ) -> None:
        self._bind = bind
        self._owns_context = context is None
        self._context: zmq.Context[Any] = context if context is not None else zmq.Context()
        self._max_message_size = max_message_size
        self._curve = curve
        self._on_frame: ServerFrameHandler | None = None
        self._loop: SocketLoop | None = None
        self._bound_address: str | None = None
        self._user_ids: dict[bytes, str] = {}
        self._lock = threading.Lock()
        self._closed = False

    @property
    def bound_address(self) -> str:
        """The endpoint actually bound (`tcp://127.0.0.1:*` resolves to the chosen port)."""
        if self._bound_address is None:
            raise RuntimeError("ZmqServer is not started")
        return self._bound_address

    def start(self, on_frame: ServerFrameHandler) -> None:
        """Bind the ROUTER and start delivering; a bind failure raises `OSError`."""
        with self._lock:
            if self._closed or self._loop is not None:
                raise RuntimeError("ZmqServer can be started once, before close()")
            socket = self._context.socket(zmq.ROUTER)
            try:
                self._configure(socket)
                socket.bind(self._bind)
            except zmq.ZMQError as exc:
                socket.close(linger=0)
                raise OSError(exc.errno, f"cannot bind {self._bind!r}: {exc.strerror}") from exc
            self._bound_address = socket.getsockopt_string(zmq.LAST_ENDPOINT)
            self._on_frame = on_frame
            self._loop = SocketLoop(
                socket,
                self._dispatch,
                name=f"corral-zmq-server {self._bound_address}",
                copy=self._curve is None,  # Frame objects carry the ZAP User-Id
                owned_context=self._context if self._owns_context else None,
            )

    def send(self, peer: bytes, frame: bytes) -> None:
        """Queue `frame` for `peer`; an unknown or gone peer is logged and dropped."""
        loop = self._loop
        if loop is None:
            log.debug("ZmqServer not started; dropped a frame")
            return
        loop.send([peer, frame])

    def peer_user_id(self, peer: bytes) -> str | None:
        """The ZAP User-Id under which `peer` last spoke; None without CURVE or if unknown."""
        return self._user_ids.get(peer)

    def close(self) -> None:
        """Stop the loop and close the socket (and a private context); idempotent."""
        with self._lock:
            first_call, self._closed = not self._closed, True
            loop = self._loop
        if loop is not None:
            loop.close()  # idempotent; terminates a private context once the socket is closed
        elif first_call and self._owns_context:
            self._context.term()

    def _configure(self, socket: zmq.Socket[Any]) -> None:
        apply_common_options(socket)
        # ROUTER_MANDATORY: a send to a peer that is gone raises EHOSTUNREACH (which the loop
        # logs) instead of vanishing silently, so a lost reply is visible in the logs.
        socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # MAXMSGSIZE at 2x: a frame that large is a broken or hostile peer, and ZeroMQ drops it
        # with the connection before buffering it; frames between 1x and 2x reach the
        # application, which answers `too_large` so an honest client learns why.
        socket.setsockopt(zmq.MAXMSGSIZE, 2 * self._max_message_size)
        if self._curve is not None:
            socket.setsockopt(zmq.CURVE_SERVER, 1)
            socket.setsockopt(zmq.CURVE_SECRETKEY, self._curve.secret_key)
            socket.setsockopt(zmq.CURVE_PUBLICKEY, self._curve.public_key)
            # A ZAP domain makes libzmq consult the ZAP handler (allow-list and roles).
            socket.setsockopt_string(zmq.ZAP_DOMAIN, ZAP_DOMAIN)

    def _dispatch(self, parts: list[Any]) -> None:
        if len(parts) != 2:
            # debug: the peer is told (bad_request), and a hostile one must not flood the log
            log.debug("refused a %d-frame message; the protocol sends one frame", len(parts) - 1)
            if len(parts) > 1:
                peer = parts[0] if isinstance(parts[0], bytes) else parts[0].bytes
                self.send(peer, codec.error("bad_request", "a message must be exactly one frame"))
            return
        peer, frame = parts
        if self._curve is not None:
            peer, frame = peer.bytes, self._note_user_id(peer.bytes, frame)
        assert self._on_frame is not None
        self._on_frame(peer, frame)

    def _note_user_id(self, peer: bytes, frame: zmq.Frame) -> bytes:
        try:
            user_id = frame.get("User-Id")
        except zmq.ZMQError:  # no ZAP handler answered: no identity to report
            user_id = ""
        self._user_ids.pop(peer, None)  # re-insert: dict order then tracks recency
        if user_id:
            self._user_ids[peer] = user_id
            if len(self._user_ids) > MAX_TRACKED_USER_IDS:
                del self._user_ids[next(iter(self._user_ids))]
        return frame.bytes


def connected_dealer(
    context: zmq.Context[Any],
    address: str,
    curve: CurveClientConfig | None,
    *,
    watched: bool = False,
) -> zmq.Socket[bytes]:
    """A DEALER with the common options (and CURVE keys), connecting to `address`; a bad
    address raises `OSError` naming it, with the socket closed. `watched`: faster ZMTP
    heartbeats, for a peer that fails over to another coordinator when this one freezes."""
    socket = context.socket(zmq.DEALER)
    try:
        apply_common_options(socket)
        if watched:
            socket.setsockopt(zmq.HEARTBEAT_IVL, WATCHED_HEARTBEAT_INTERVAL_MS)
            socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, WATCHED_HEARTBEAT_TIMEOUT_MS)
        # IMMEDIATE stays 0: frames sent before the TCP connection is up queue (up to the
        # high-water mark) and go out on connect, so a worker may say hello at once.
        if curve is not None:
            socket.setsockopt(zmq.CURVE_SERVERKEY, curve.server_public_key)
            socket.setsockopt(zmq.CURVE_PUBLICKEY, curve.public_key)
            socket.setsockopt(zmq.CURVE_SECRETKEY, curve.secret_key)
        socket.connect(address)
    except zmq.ZMQError as exc:
        socket.close(linger=0)
        raise OSError(exc.errno, f"cannot connect {address!r}: {exc.strerror}") from exc
    return socket


class ZmqConnection:
    """One peer end: a DEALER connected to the coordinator, owned by one loop thread."""

    def __init__(
        self,
        address: str,
        on_frame: ClientFrameHandler,
        *,
        context: zmq.Context[Any] | None = None,
        curve: CurveClientConfig | None = None,
        on_lost: LostHandler | None = None,
    ) -> None:
        owned = zmq.Context() if context is None else None
        ctx = context if context is not None else owned
        assert ctx is not None
        try:
            socket = connected_dealer(ctx, address, curve, watched=on_lost is not None)
        except OSError:
            if owned is not None:
                owned.term()
            raise
        self._on_frame = on_frame
        self._loop = SocketLoop(
            socket,
            self._dispatch,
            name=f"corral-zmq-client {address}",
            owned_context=owned,
            on_disconnected=on_lost,
        )

    def send(self, frame: bytes) -> None:
        """Queue one frame for the coordinator; never blocks."""
        self._loop.send([frame])

    def close(self) -> None:
        """Drop the connection (the coordinator will see a new peer id next time); idempotent."""
        self._loop.close()

    def _dispatch(self, parts: list[bytes]) -> None:
        if len(parts) != 1:
            log.warning("dropped a %d-frame message; the protocol sends one frame", len(parts))
            return
        self._on_frame(parts[0])


def zmq_connector(
    address: str,
    *,
    context: zmq.Context[Any] | None = None,
    curve: CurveClientConfig | None = None,
) -> Connector:
    """A `Connector` opening one `ZmqConnection` to `address` per call.

    Without `context`, each connection creates and terminates its own; pass one to share
    ZeroMQ I/O threads (and a ZAP authenticator, in tests) across connections.
    """

    def connect(on_frame: ClientFrameHandler, on_lost: LostHandler | None = None) -> ZmqConnection:
        return ZmqConnection(address, on_frame, context=context, curve=curve, on_lost=on_lost)

    return connect


def zmq_endpoints(
    addresses: tuple[str, ...],
    *,
    context: zmq.Context[Any] | None = None,
    curve: CurveClientConfig | None = None,
) -> Endpoints[Connector]:
    """The coordinators at `addresses`, each reached by a `zmq_connector`."""
    return Endpoints.of(
        addresses, lambda address: zmq_connector(address, context=context, curve=curve)
    )
