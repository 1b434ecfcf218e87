"""The routes around jobs: manifest, health, queues, the dead letter set and the event log."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from nodes.gateway.backend import Backend
from nodes.gateway.envelope import SPEC_VERSION, ojs_job
from nodes.gateway.errors import OjsError, invalid
from nodes.gateway.http import respond
from nodes.gateway.times import rfc3339
from transport.errors import CorralError

DEFAULT_LIMIT, MAX_LIMIT = 50, 1000
CONFORMANCE_LEVEL = 3  # levels 0 to 3 pass in full; level 4 but one case (README.md)
VERSION = "0.1.0"


class AdminRoutes:
    def __init__(self, backend: Backend, now: Callable[[], float]) -> None:
        self.backend = backend
        self.now = now
        self.started = time.monotonic()  # noqa: TID251 - uptime, not a node's clock

    async def manifest(self, request: Request) -> Response:
        return respond(request, {
            "specversion": SPEC_VERSION,
            "ojs_version": SPEC_VERSION,
            "implementation": {"name": "corral", "version": VERSION, "language": "python"},
            "conformance_level": CONFORMANCE_LEVEL,
            "protocols": ["http"],
            "backend": "corral",
            "capabilities": {
                "batch_enqueue": True, "cron": True, "dead_letter": True, "delayed_jobs": True,
                "job_ttl": True, "priority_queues": True, "rate_limiting": True,
                "schema_validation": False, "unique_jobs": True, "workflows": True,
                "pause_resume": True,
            },
            "extensions": [],
        })  # fmt: skip

    async def health(self, request: Request) -> Response:
        uptime = round(time.monotonic() - self.started)  # noqa: TID251
        try:
            await self.backend.request("ping")
        except CorralError as exc:
            backend = {"type": "corral", "status": "unreachable", "error": str(exc)}
            body = {"status": "degraded", "version": SPEC_VERSION, "uptime_seconds": uptime,
                    "backend": backend}  # fmt: skip
            return respond(request, body, 503)
        body = {"status": "ok", "version": SPEC_VERSION, "uptime_seconds": uptime,
                "backend": {"type": "corral", "status": "connected"}}  # fmt: skip
        return respond(request, body)

    async def queues(self, request: Request) -> Response:
        stats = await self.backend.request("stats")
        paused = set(stats.get("paused", []))
        queues = [
            {"name": name, "status": "paused" if name in paused else "active"}
            for name in sorted(stats["queues"])
        ]
        pagination = {"total": len(queues), "limit": len(queues), "offset": 0, "has_more": False}
        return respond(request, {"queues": queues, "pagination": pagination})

    async def queue_stats(self, request: Request) -> Response:
        name = request.path_params["name"]
        stats = await self.backend.request("stats")
        counts = stats["queues"].get(name)
        if counts is None:
            raise OjsError(404, "not_found", f"queue {name} not found")
        status = "paused" if name in stats.get("paused", []) else "active"
        queue = {"name": name, "status": status, **counts}
        return respond(request, {"queue": queue, "status": status, "stats": counts})

    async def pause(self, request: Request) -> Response:
        return await self._pause(request, True)

    async def resume(self, request: Request) -> Response:
        return await self._pause(request, False)

    async def _pause(self, request: Request, paused: bool) -> Response:
        name = request.path_params["name"]
        await self.backend.request("pause_queue" if paused else "resume_queue", queue=name)
        return respond(request, {"queue": {"name": name, "paused": paused}})

    async def dead_letter(self, request: Request) -> Response:
        limit = _limit(request)
        fields: dict[str, Any] = {"state": "discarded", "limit": limit}
        queue = request.query_params.get("queue")
        if queue:
            fields["queue"] = queue
        jobs = (await self.backend.request("jobs", **fields))["jobs"]
        views = [ojs_job(job) for job in jobs]
        pagination = {"total": len(views), "limit": limit, "offset": 0, "has_more": False}
        return respond(request, {"jobs": views, "pagination": pagination})

    async def dead_letter_retry(self, request: Request) -> Response:
        job_id = await self._dead(request, 409, "conflict")
        await self.backend.request("retry", job_id=job_id)
        return respond(request, {"job": ojs_job(await self.backend.job(job_id))})

    async def dead_letter_delete(self, request: Request) -> Response:
        job_id = await self._dead(request, 404, "not_found")
        await self.backend.request("delete", job_id=job_id)
        return respond(request, {"deleted": True, "job_id": job_id})

    async def _dead(self, request: Request, status: int, code: str) -> str:
        """The path's job id, when that job is in the dead letter set (discarded)."""
        job_id: str = request.path_params["job_id"]
        state = (await self.backend.job(job_id))["state"]
        if state != "discarded":
            raise OjsError(status, code, f"job {job_id} is {state}, not in the dead letter set")
        return job_id

    async def events(self, request: Request) -> Response:
        types = _names(request, "types")
        queues = _names(request, "queues")
        chosen = self.backend.events.select(types, queues, _limit(request))
        return respond(request, {"events": [event.view(rfc3339) for event in chosen]})


def _names(request: Request, key: str) -> set[str] | None:
    text = request.query_params.get(key)
    return {name for name in text.split(",") if name} if text else None


def _limit(request: Request) -> int:
    text = request.query_params.get("limit", str(DEFAULT_LIMIT))
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise invalid(f"limit must be an integer in [1, {MAX_LIMIT}]")
    return int(text)
