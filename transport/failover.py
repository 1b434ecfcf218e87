"""FailoverRequester: a client's requests over several coordinators, one of which leads.

A standby answers `not_leader` (naming the leader when it knows it), and a dead or frozen
coordinator does not answer at all. Either way the same request body goes to the next
endpoint (the named leader first) until the call's own timeout is spent. Each attempt waits
`attempt_timeout` (plus the request's `wait`, for a `get` held until its job ends): a leader
answers in milliseconds, and one silent endpoint must not eat the whole call. After a whole
round of endpoints failed it pauses briefly, as a failover takes a moment to elect a leader.

A request retried after no reply may have run on the coordinator that went silent; the enqueue
body carries a `request_id` so that it is made once (PROTOCOL.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from transport.base import Requester
from transport.endpoints import Endpoints

Reply = dict[str, Any]
ATTEMPT_TIMEOUT_S = 3.0
ROUND_PAUSE_S = 0.2  # between rounds in which no endpoint led: a failover is under way


class FailoverRequester:
    """A `Requester` over `Endpoints` of requesters, one per coordinator (thread-safe).

    `now()` reads the time the call's timeout is measured in and `pause(seconds)` waits, both
    virtual in a simulation.
    """

    def __init__(
        self,
        endpoints: Endpoints[Requester],
        now: Callable[[], float],
        pause: Callable[[float], None],
        attempt_timeout: float = ATTEMPT_TIMEOUT_S,
    ) -> None:
        self._endpoints = endpoints
        self._now = now
        self._pause = pause
        self._attempt_timeout = attempt_timeout
        self._lock = threading.Lock()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def request(self, body: Reply, timeout: float) -> Reply | None:
        """Send `body` to the leader, wherever it is; its reply, or what the last attempt got
        (None, or a `not_leader` error) when `timeout` runs out first."""
        deadline = self._now() + timeout
        attempt = self._attempt_timeout + float(body.get("wait", 0.0))
        failed = 0
        last: Reply | None = None
        while not self._closed:
            remaining = deadline - self._now()
            if remaining <= 0:
                break
            with self._lock:
                address, requester = self._endpoints.address, self._endpoints.current
            reply = requester.request(body, min(attempt, remaining))
            if reply is not None and not _not_leader(reply):
                return reply
            last = reply
            hint = reply.get("leader") if reply is not None else None
            with self._lock:
                if self._endpoints.address == address:  # no other thread moved on already
                    self._endpoints.advance(hint if isinstance(hint, str) else None)
            failed += 1
            if failed % len(self._endpoints) == 0:
                self._pause(min(ROUND_PAUSE_S, max(0.0, deadline - self._now())))
        return last

    def close(self) -> None:
        """Close every endpoint's requester; later requests get None. Idempotent."""
        self._closed = True
        for requester in self._endpoints.reaches:
            requester.close()


def _not_leader(reply: Reply) -> bool:
    return reply.get("type") == "error" and reply.get("code") == "not_leader"
