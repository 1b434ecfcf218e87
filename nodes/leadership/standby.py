"""What a coordinator's socket answers while it does not lead, and the switch in front of it.

A standby answers `ping` as a leader does (so `corral run` and health checks see it alive)
and every other request with `not_leader`, naming the leader's endpoint when it knows it
(docs/PROTOCOL.md, Extensions): a peer holding several endpoints goes there next. It keeps
no state about peers, so nothing it answers survives into its next term.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from transport import codec
from transport.base import ServerFrameHandler
from transport.errors import CorralError
from transport.validation import request_rid, request_type

log = logging.getLogger(__name__)
NOT_LEADER = "not_leader"


class StandbyResponder:
    """Answers frames on behalf of a coordinator that does not serve."""

    def __init__(
        self,
        send: Callable[[bytes, bytes], None],
        leader: Callable[[], str | None],
        instance: str,
        max_message_size: int,
    ) -> None:
        self.send = send
        self.leader = leader  # the leader's endpoint as last read from the lease
        self.instance = instance
        self.max_message_size = max_message_size

    def __call__(self, peer: bytes, frame: bytes) -> None:
        rid = None
        try:
            body = codec.decode(frame, self.max_message_size)
            rid = request_rid(body)
            kind = request_type(body)
        except CorralError as exc:
            self.send(peer, codec.error(exc.code, exc.message, rid))
            return
        if kind == "ping":
            pong: dict[str, Any] = {"type": "pong", "rid": rid}
            if body.get("identify") is True:
                pong["instance"] = self.instance
            self.send(peer, codec.encode(pong))
            return
        leader = self.leader()
        refusal: dict[str, Any] = {
            "type": "error",
            "rid": rid,
            "code": NOT_LEADER,
            "message": "this coordinator is a standby"
            + (f"; the leader is at {leader}" if leader else "; no leader yet"),
        }
        if leader:
            refusal["leader"] = leader
        self.send(peer, codec.encode(refusal))


class Switchboard:
    """The socket's one frame handler: the serving dispatcher while the lease is ours and
    trusted (checked per frame, so a leader thawed from SIGSTOP refuses at once), else the
    standby responder."""

    def __init__(
        self,
        serving: Callable[[], bool],
        standby: ServerFrameHandler,
    ) -> None:
        self.serving = serving
        self.standby = standby
        self.dispatcher: ServerFrameHandler | None = None  # set while a term is served

    def __call__(self, peer: bytes, frame: bytes) -> None:
        dispatcher = self.dispatcher
        if dispatcher is not None and self.serving():
            dispatcher(peer, frame)
        else:
            self.standby(peer, frame)
