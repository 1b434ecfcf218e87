"""The gateway's side of corral: client requests to the leading coordinator, the HTTP
workers' sessions, and the log of what passed through (the OJS events endpoint)."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nodes.client_requests import reply_or_raise
from nodes.gateway.workers import MAX_HTTP_WORKERS, WorkerSessions
from nodes.request_ids import new_request_id
from transport.aio import Reach

EVENTS_KEPT = 10_000


@dataclass(frozen=True)
class GatewayEvent:
    seq: int
    type: str
    time: float
    data: dict[str, Any]

    def view(self, stamp: Callable[[float], str]) -> dict[str, Any]:
        return {"id": str(self.seq), "type": self.type, "time": stamp(self.time), "data": self.data}


class EventLog:
    """The last EVENTS_KEPT job events this gateway took part in, oldest first."""

    def __init__(self) -> None:
        self._events: deque[GatewayEvent] = deque(maxlen=EVENTS_KEPT)
        self._seq = itertools.count(1)

    def add(self, kind: str, at: float, job: dict[str, Any], **extra: Any) -> None:
        data = {
            "job_id": job["id"],
            "job_type": job["type"],
            "queue": job["queue"],
            "attempt": job.get("attempt", 0),
            **extra,
        }
        self._events.append(GatewayEvent(next(self._seq), kind, at, data))

    def select(
        self, types: set[str] | None, queues: set[str] | None, limit: int
    ) -> list[GatewayEvent]:
        chosen = [
            event
            for event in self._events
            if (not types or event.type in types) and (not queues or event.data["queue"] in queues)
        ]
        return chosen[-limit:]


class Backend:
    """Requests to the coordinators `reach` names, from the gateway's event loop."""

    def __init__(
        self,
        reach: Reach,
        *,
        timeout: float,
        test_directives: bool = False,
        max_workers: int = MAX_HTTP_WORKERS,
    ) -> None:
        self._requester = reach.requester()
        self.timeout = timeout
        self.workers = WorkerSessions(
            reach, timeout=timeout, test_directives=test_directives, max_workers=max_workers
        )
        self.events = EventLog()

    async def request(self, kind: str, **fields: Any) -> dict[str, Any]:
        """The reply to one client request; the matching CorralError for an error reply."""
        reply = await self._requester.request({"type": kind, **fields}, self.timeout)
        return reply_or_raise(kind, reply, self.timeout)

    async def enqueue(self, specs: list[dict[str, Any]]) -> dict[str, Any]:
        """One job or an atomic batch, with a request id so a resend makes them once."""
        body = {"job": specs[0]} if len(specs) == 1 else {"jobs": specs}
        return await self.request("enqueue", request_id=new_request_id(), **body)

    async def job(self, job_id: str) -> dict[str, Any]:
        reply = await self.request("get", job_id=job_id)
        return reply["job"]

    async def close(self) -> None:
        await self._requester.close()
        await self.workers.close()
