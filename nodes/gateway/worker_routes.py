"""The worker's routes: fetch, ack, nack and heartbeat, each as its HTTP worker's corral
session (nodes/gateway/workers.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from nodes.gateway.backend import Backend
from nodes.gateway.envelope import ojs_job
from nodes.gateway.errors import OjsError, conflict, invalid
from nodes.gateway.http import json_object, respond
from nodes.gateway.times import rfc3339
from nodes.gateway.workers import ANONYMOUS, HttpWorker

MAX_FETCH = 1000
DIRECTIVE = {"running": "continue", "quiet": "quiet", "terminate": "terminate"}


class WorkerRoutes:
    def __init__(self, backend: Backend, now: Callable[[], float]) -> None:
        self.backend = backend
        self.now = now

    async def fetch(self, request: Request) -> Response:
        body = await json_object(request)
        queues = body.get("queues", ["default"])
        if not isinstance(queues, list) or not queues or not all(
            isinstance(q, str) and q for q in queues
        ):
            raise invalid("queues must be a non-empty array of queue names")
        count = body.get("count", 1)
        if type(count) is not int or not 1 <= count <= MAX_FETCH:
            raise invalid(f"count must be an integer in [1, {MAX_FETCH}]")
        name = _worker_name(body)
        jobs = await self.backend.workers.fetch(name, list(dict.fromkeys(queues)), count)
        now = self.now()
        for job in jobs:
            self.backend.events.add("job.started", now, job, worker_id=name)
        views = [ojs_job(job) for job in jobs]
        reply: dict[str, Any] = {"jobs": views}
        if views:
            reply["job"] = views[0]
        return respond(request, reply)

    async def ack(self, request: Request) -> Response:
        body = await json_object(request)
        job_id, worker = await self._holder(body)
        fields = {"result": body["result"]} if "result" in body else {}
        fetched = worker.held[job_id].job
        await self.backend.workers.settle(worker, job_id, **fields)
        ended = self.now()
        # rendered from the job as fetched: a read back would cost the coordinator a request
        job = {**fetched, "state": "completed", "completed_at": ended,
               "result": fields.get("result")}  # fmt: skip
        started = job.get("started_at")
        duration = round((ended - started) * 1000) if started is not None else None
        self.backend.events.add("job.completed", ended, job, duration_ms=duration)
        view = ojs_job(job)
        reply = {
            "acknowledged": True,
            "id": job_id,
            "job_id": job_id,
            "state": view["state"],
            "completed_at": view.get("completed_at", rfc3339(ended)),
            "job": view,
        }
        return respond(request, reply)

    async def nack(self, request: Request) -> Response:
        body = await json_object(request)
        job_id, worker = await self._holder(body)
        error = body.get("error", {})
        if not isinstance(error, dict):
            raise invalid("error must be an object")
        kind = error.get("code", error.get("type", "error"))
        message = error.get("message", "")
        if not isinstance(kind, str) or not isinstance(message, str):
            raise invalid("error.code and error.message must be strings")
        held = worker.held[job_id]
        retryable = error.get("retryable", True) is not False and not any(
            _matches(pattern, kind) for pattern in held.non_retryable
        )
        failure: dict[str, Any] = {"type": kind or "error", "message": message}
        if body.get("requeue") is True:  # the worker lets the job go: it is not the job's fault
            failure["requeue"] = True
        elif not retryable:
            failure["retryable"] = False
        fetched = worker.held[job_id].job
        settled = await self.backend.workers.settle(worker, job_id, error=failure)
        job = _failed(fetched, settled, failure, self.now())
        event = "job.failed" if settled["state"] == "discarded" else "job.retrying"
        self.backend.events.add(event, self.now(), job, error={"code": kind, "message": message})
        view = ojs_job(job)
        reply = {
            "id": job_id,
            "job_id": job_id,
            "state": view["state"],
            "attempt": view["attempt"],
            "max_attempts": view["max_attempts"],
            "job": view,
        }
        for key in ("next_attempt_at", "discarded_at", "completed_at", "retry_delay_ms"):
            if key in view:
                reply[key] = view[key]
        return respond(request, reply)

    async def heartbeat(self, request: Request) -> Response:
        body = await json_object(request)
        listed = body.get("active_jobs", body.get("active_job_ids"))
        if listed is None and "job_id" in body:
            listed = [body["job_id"]]
        if listed is not None and (
            not isinstance(listed, list) or not all(isinstance(j, str) for j in listed)
        ):
            raise invalid("active_jobs must be an array of job ids")
        name = _worker_name(body)
        reply = await self.backend.workers.beat(name, listed)
        directive = DIRECTIVE.get(reply["state"], "continue")
        return respond(
            request,
            {
                "state": reply["state"],  # running, quiet or terminate: the directive
                "directive": directive,
                "jobs_extended": reply["renewed"],
                "jobs_cancelled": reply.get("cancel_job_ids", []),
                "server_time": rfc3339(self.now()),
            },
        )

    async def _holder(self, body: dict[str, Any]) -> tuple[str, HttpWorker]:
        """The job to settle and the HTTP worker holding it: 404 for an unknown job, 409 for
        one no HTTP worker of this gateway holds (not active, or recovered meanwhile)."""
        job_id = body.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise invalid("job_id is required")
        worker = self.backend.workers.holder(job_id)
        if worker is None:
            job = await self.backend.job(job_id)  # unknown_job -> 404
            raise conflict(
                f"job {job_id} is {job['state']}, not active under a worker of this gateway",
                state=job["state"],
            )
        named = body.get("worker_id")
        if isinstance(named, str) and named and named != worker.name:
            raise OjsError(409, "conflict", f"job {job_id} is held by another worker")
        return job_id, worker


def _worker_name(body: dict[str, Any]) -> str:
    name = body.get("worker_id", ANONYMOUS)
    if not isinstance(name, str) or len(name) > 256:
        raise invalid("worker_id must be a string of at most 256 characters")
    return name


def _matches(pattern: str, code: str) -> bool:
    """A non_retryable_errors entry: the code itself, or a regular expression matching it
    whole (`Auth.*`); a pattern that is not a valid expression matches only itself."""
    if pattern == code:
        return True
    try:
        return re.fullmatch(pattern, code) is not None
    except re.error:
        return False


def _failed(
    fetched: dict[str, Any], settled: dict[str, Any], failure: dict[str, Any], now: float
) -> dict[str, Any]:
    """The Job map after a `fail`, from the job as fetched and the coordinator's reply (its
    new state and, when retryable, the next attempt's time), as the coordinator recorded it."""
    entry: dict[str, Any] = {"attempt": fetched["attempt"], "type": failure["type"],
                             "message": failure["message"], "at": now}  # fmt: skip
    job = {**fetched, "state": settled["state"], "errors": [*fetched.get("errors", ()), entry]}
    job.pop("worker_id", None)
    if settled.get("next_attempt_at") is not None:
        job["next_attempt_at"] = entry["retry_at"] = settled["next_attempt_at"]
    if settled["state"] == "discarded":
        job["completed_at"] = now
    return job
