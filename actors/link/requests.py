"""The link's requests waiting for their reply, by rid, each with a deadline."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from transport import codec

# Replies the link tells apart; every other request (`ack`, `fail`) is about one outcome.
REPLY_KINDS = frozenset({"hello", "register", "beat", "fetch", "outcomes", "deregister"})


@dataclass(frozen=True, slots=True)
class Pending:
    """A request waiting for its reply."""

    kind: str
    context: Any
    deadline: float


class Requests:
    """Frames requests with fresh rids and remembers what each one's reply is for."""

    def __init__(self) -> None:
        self.pending: dict[int, Pending] = {}
        self._rids = itertools.count(1)

    def frame(
        self,
        kind: str,
        body: dict[str, Any],
        context: Any,
        deadline: float,
        size_limit: int | None = None,
    ) -> bytes | None:
        """The encoded request, now pending; None (nothing pending) over `size_limit` bytes."""
        rid = next(self._rids)
        frame = codec.encode({"type": kind, "rid": rid, **body})
        if size_limit is not None and len(frame) > size_limit:
            return None
        self.pending[rid] = Pending(kind if kind in REPLY_KINDS else "outcome", context, deadline)
        return frame

    def expired(self, now: float) -> list[Pending]:
        """Take out the requests whose reply is overdue (a lossy link), oldest first."""
        overdue = [rid for rid, pending in self.pending.items() if pending.deadline <= now]
        return [self.pending.pop(rid) for rid in overdue]
