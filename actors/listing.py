"""ListingActor: answers the operators' `jobs` listing off the transport's I/O thread.

A filter that matches few of many jobs walks every job the store holds (~0.4 s per million).
On the I/O thread that walk would hold up every other peer's frames for as long; here it only
shares the interpreter with them, and replies to beats, fetches and acks keep flowing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors.base import CorralActor
from actors.context import CoordinatorContext
from actors.mail import Inbound
from transport import codec
from transport import messages as m


class ListingActor(CorralActor):
    """Reads listings from the store; owns nothing."""

    inline_tells = False  # its whole point is to run on its own thread

    def __init__(self, activity: Any, ctx: CoordinatorContext) -> None:
        super().__init__(activity)
        self.ctx = ctx

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        return {Inbound: self._list}

    def on_handler_error(self, message: Any) -> None:
        if isinstance(message, Inbound):
            self.ctx.outbox(
                message.peer, codec.error("internal", "the listing failed", message.request.rid)
            )

    def _list(self, inbound: Inbound) -> None:
        request: m.Jobs = inbound.request  # type: ignore[assignment]
        jobs = self.ctx.store.list(request.queue, request.state, request.job_type, request.limit)
        self.ctx.outbox(inbound.peer, codec.reply(request.rid, jobs=jobs))
