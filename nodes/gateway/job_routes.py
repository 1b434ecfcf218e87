"""The producer's routes: enqueue one job or a batch, read a job, cancel it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from nodes.gateway.backend import Backend
from nodes.gateway.envelope import STATE_OF, conflict_policy, job_spec, ojs_job
from nodes.gateway.errors import OjsError, invalid
from nodes.gateway.http import json_object, respond

TERMINAL = frozenset({"completed", "discarded", "cancelled"})
MAX_BATCH = 10_000  # corral's max_batch_jobs


class JobRoutes:
    def __init__(self, backend: Backend, now: Callable[[], float]) -> None:
        self.backend = backend
        self.now = now

    async def create(self, request: Request) -> Response:
        spec = job_spec(await json_object(request), self.now())
        reply = await self.backend.enqueue([spec])
        if reply.get("duplicate"):
            policy = conflict_policy(spec)
            existing = reply["job_id"]
            if policy == "ignore":
                return respond(request, {"job": ojs_job(await self.backend.job(existing))})
            if policy != "replace":
                raise OjsError(
                    409, "duplicate", "a job with the same unique key exists",
                    details={"existing_job_id": existing},
                )  # fmt: skip
            # replace: cancel the holder, then enqueue (two requests: not atomic, docs/OJS.md)
            await self.backend.request("cancel", job_id=existing)
            reply = await self.backend.enqueue([spec])
        job = self._made(spec, reply["job_id"], reply["state"])
        self.backend.events.add("job.enqueued", self.now(), job)
        location = f"/ojs/v1/jobs/{job['id']}"
        return respond(request, {"job": ojs_job(job)}, 201, Location=location)

    async def batch(self, request: Request) -> Response:
        body = await json_object(request)
        items = body.get("jobs")
        if not isinstance(items, list) or not items:
            raise invalid("jobs must be a non-empty array")
        if len(items) > MAX_BATCH:
            raise invalid(f"a batch holds at most {MAX_BATCH} jobs")
        now = self.now()
        specs = []
        for index, item in enumerate(items):
            try:
                specs.append(job_spec(item, now))
            except OjsError as exc:
                exc.message = f"jobs[{index}]: {exc.message}"
                raise
        reply = await self.backend.enqueue(specs)
        ids = reply.get("job_ids", [reply.get("job_id")])
        states = reply.get("states", [reply.get("state")])
        jobs = [self._made(s, i, st) for s, i, st in zip(specs, ids, states, strict=True)]
        for job in jobs:
            self.backend.events.add("job.enqueued", now, job)
        views = [ojs_job(job) for job in jobs]
        return respond(request, {"jobs": views, "count": len(views)}, 201)

    def _made(self, spec: dict[str, Any], job_id: str, state: str) -> dict[str, Any]:
        """The Job map of a job just made, read off its spec (no second round trip)."""
        retry = {"initial_interval": 1.0, "backoff_coefficient": 2.0, "max_interval": 300.0,
                 "jitter": True, **spec.get("retry", {})}  # fmt: skip
        return {
            "max_attempts": 3,
            **spec,
            "retry": retry,
            "id": job_id,
            "state": state,
            "attempt": 0,
            "created_at": self.now(),
            "errors": [],
        }

    async def get(self, request: Request) -> Response:
        job = await self.backend.job(request.path_params["job_id"])
        return respond(request, {"job": ojs_job(job)})

    async def cancel(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        before = await self.backend.job(job_id)
        if before["state"] in TERMINAL:
            state = before["state"]
            raise OjsError(
                409, "invalid_request", f"job {job_id} is {state}: it cannot be cancelled",
                details={"state": state},
            )  # fmt: skip
        await self.backend.request("cancel", job_id=job_id)
        self.backend.workers.forget(job_id)
        job = await self.backend.job(job_id)
        self.backend.events.add("job.cancelled", self.now(), job)
        view = ojs_job(job)
        view["previous_state"] = STATE_OF.get(before["state"], before["state"])
        return respond(request, {"job": view})
