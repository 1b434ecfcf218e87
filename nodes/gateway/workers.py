"""HTTP workers as corral worker sessions (PROTOCOL.md section 3), one session each.

An OJS worker names itself with `worker_id` on fetch, ack, nack and heartbeat (a worker that
names none shares the gateway's anonymous session). The gateway opens a corral session for it
on first use (`hello`, then `register` with the queues it fetches from, any job type), and
speaks for it: each HTTP call is one corral request, so the coordinator sees the worker's
life as it is. A worker that stops calling stops beating: after `heartbeat_timeout` the
coordinator declares the session dead and recovers its jobs, and a job's own lease (its
visibility timeout) expires sooner. Acks of a recovered job are refused (`not_owner`).

When the coordinator forgets a session (a restart, a takeover by a standby, a declared death)
the next call opens a new one and asks to resume the jobs the worker still holds
(`previous_worker_id` + `active_job_ids`), as a corral worker does.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from nodes.gateway.envelope import RESERVED_META
from nodes.gateway.errors import OjsError
from transport.aio import AsyncRequester, Reach
from transport.errors import ConnectionLost, CorralError, error_for_code

SESSION_LOST = frozenset({"not_registered", "unknown_worker"})
HTTP_CONCURRENCY = 1000  # jobs one HTTP worker may hold at once
ANONYMOUS = ""
# Each HTTP worker holds a ZeroMQ connection to each coordinator (a session is bound to its
# connection): a file descriptor or two apiece, so their number is bounded (`max_http_workers`)
# and a worker silent past the coordinator's heartbeat_timeout gives its place back.
MAX_HTTP_WORKERS = 256
SILENT_AFTER_S = 30.0


@dataclass
class Held:
    """A job an HTTP worker holds: the Job map it was fetched as (its attempt is the one to
    settle; an ack's reply is rendered from it), what the job asks of its worker."""

    job: dict[str, Any]
    non_retryable: tuple[str, ...] = ()
    directive: str | None = None  # conformance hook: meta.test_directive


@dataclass
class HttpWorker:
    """One HTTP worker and the corral session that speaks for it."""

    name: str
    requester: AsyncRequester
    worker_id: str | None = None
    queues: list[str] = field(default_factory=list)
    held: dict[str, Held] = field(default_factory=dict)
    previous_id: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_call: float = 0.0  # the event loop's time of its last call
    silent_after: float = SILENT_AFTER_S  # the coordinator's heartbeat_timeout, once welcomed

    def forgotten(self, now: float) -> bool:
        """Silent past the coordinator's patience: its session is dead, its jobs recovered."""
        return not self.lock.locked() and now > self.last_call + self.silent_after


class WorkerSessions:
    """Every HTTP worker's session, for coroutines of the gateway's event loop."""

    def __init__(
        self,
        reach: Reach,
        *,
        timeout: float,
        test_directives: bool = False,
        max_workers: int = MAX_HTTP_WORKERS,
    ) -> None:
        self._reach = reach
        self._max_workers = max_workers
        self._timeout = timeout
        self._test_directives = test_directives
        self._workers: dict[str, HttpWorker] = {}
        self._holder: dict[str, HttpWorker] = {}  # job id -> the worker holding it
        self._closing: set[asyncio.Task[None]] = set()

    def holder(self, job_id: str) -> HttpWorker | None:
        return self._holder.get(job_id)

    async def fetch(self, name: str, queues: list[str], count: int) -> list[dict[str, Any]]:
        """Claim up to `count` jobs for worker `name` from `queues`, in their order."""
        worker = self._worker(name)
        async with worker.lock:
            if not set(queues) <= set(worker.queues):
                worker.queues = [*worker.queues, *(q for q in queues if q not in worker.queues)]
                if worker.worker_id is not None:
                    await self._register(worker)
            reply = await self._call(worker, "fetch", count=count, queues=queues, wait=0.0)
        jobs: list[dict[str, Any]] = reply["jobs"]
        for job in jobs:
            worker.held[job["id"]] = _held(job, self._test_directives)
            self._holder[job["id"]] = worker
        return jobs

    async def settle(self, worker: HttpWorker, job_id: str, **fields: Any) -> dict[str, Any]:
        """`ack` (fields: result) or `fail` (fields: error) of a held job, as its worker."""
        attempt = worker.held[job_id].job["attempt"]
        kind = "fail" if "error" in fields else "ack"
        async with worker.lock:
            try:
                reply = await self._call(worker, kind, job_id=job_id, attempt=attempt, **fields)
            except ConnectionLost:
                raise  # no answer: the worker may send it again (a replay is fenced)
            except CorralError:
                self.forget(job_id)  # refused: it is not this worker's any more
                raise
        self.forget(job_id)
        return reply

    def forget(self, job_id: str) -> None:
        worker = self._holder.pop(job_id, None)
        if worker is not None:
            worker.held.pop(job_id, None)

    async def beat(self, name: str, job_ids: list[str] | None) -> dict[str, Any]:
        """A heartbeat of worker `name`: renews the leases of its jobs (all it holds when it
        lists none); the reply's `state` is the coordinator's directive."""
        worker = self._worker(name)
        listed = list(worker.held) if job_ids is None else [j for j in job_ids if j in worker.held]
        state = "running"
        for job_id in listed:
            state = worker.held[job_id].directive or state
        async with worker.lock:
            reply = await self._call(worker, "beat", state=state, active_job_ids=listed)
        for job_id in reply.get("cancel_job_ids", ()):
            self.forget(job_id)
        return {**reply, "renewed": [j for j in listed if j in worker.held]}

    def _worker(self, name: str) -> HttpWorker:
        worker = self._workers.get(name)
        if worker is None:
            self._make_room()
            worker = self._workers[name] = HttpWorker(name, self._reach.requester())
        worker.last_call = asyncio.get_running_loop().time()
        return worker

    def _make_room(self) -> None:
        """Drop the workers gone silent when the table is full; 503 if none has."""
        if len(self._workers) < self._max_workers:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        for name in [n for n, w in self._workers.items() if w.forgotten(now)]:
            gone = self._workers.pop(name)
            for job_id in list(gone.held):
                self.forget(job_id)
            closing = loop.create_task(gone.requester.close())
            self._closing.add(closing)  # held until done: a task only weakly referenced may vanish
            closing.add_done_callback(self._closing.discard)
        if len(self._workers) >= self._max_workers:
            raise OjsError(
                503, "backend_error", f"{self._max_workers} HTTP workers are active: the most"
                " this gateway serves (max_http_workers)", retryable=True,
            )  # fmt: skip

    async def _call(self, worker: HttpWorker, kind: str, **fields: Any) -> dict[str, Any]:
        """One request of the worker's session, opened (or opened again) first when needed."""
        for _ in range(2):
            if worker.worker_id is None:
                await self._open(worker)
            reply = await self._request(worker, kind, worker_id=worker.worker_id, **fields)
            if reply.get("type") != "error":
                return reply
            if reply.get("code") not in SESSION_LOST:
                raise error_for_code(reply.get("code", "internal"), reply.get("message", ""))
            worker.previous_id, worker.worker_id = worker.worker_id, None
        raise ConnectionLost(f"the coordinator keeps forgetting worker {worker.name!r}")

    async def _open(self, worker: HttpWorker) -> None:
        """`hello`, then `register` (resuming the jobs still held, after a lost session)."""
        welcome = await self._request(
            worker, "hello", v=1, role="worker", hostname=socket.gethostname(), pid=os.getpid()
        )
        if welcome.get("type") == "error":
            raise error_for_code(welcome.get("code", "internal"), welcome.get("message", ""))
        worker.worker_id = welcome["worker_id"]
        worker.silent_after = float(welcome.get("heartbeat_timeout", SILENT_AFTER_S))
        await self._register(worker)

    async def _register(self, worker: HttpWorker) -> None:
        fields: dict[str, Any] = {
            "queues": worker.queues or ["default"],
            "concurrency": HTTP_CONCURRENCY,
            "functions": [],
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "name": f"http:{worker.name or 'anonymous'}",
        }
        if worker.previous_id is not None and worker.held:
            fields["previous_worker_id"] = worker.previous_id
            fields["active_job_ids"] = list(worker.held)
        reply = await self._request(worker, "register", worker_id=worker.worker_id, **fields)
        if reply.get("type") == "error":
            raise error_for_code(reply.get("code", "internal"), reply.get("message", ""))
        if "active_job_ids" in fields:
            resumed = set(reply.get("resumed_job_ids", ()))
            for job_id in [j for j in worker.held if j not in resumed]:
                self.forget(job_id)
        worker.previous_id = None

    async def _request(self, worker: HttpWorker, kind: str, **fields: Any) -> dict[str, Any]:
        reply = await worker.requester.request({"type": kind, **fields}, self._timeout)
        if reply is None:
            raise ConnectionLost(f"no reply to {kind} within {self._timeout} s")
        return reply

    async def close(self) -> None:
        for worker in self._workers.values():
            await worker.requester.close()


def _held(job: dict[str, Any], test_directives: bool) -> Held:
    ojs = (job.get("meta") or {}).get(RESERVED_META) or {}
    patterns = tuple((ojs.get("retry") or {}).get("non_retryable_errors", ()))
    directive = (job.get("meta") or {}).get("test_directive") if test_directives else None
    if directive not in ("quiet", "terminate"):
        directive = None
    return Held(job, patterns, directive)
