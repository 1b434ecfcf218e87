"""AsyncClient: `Client` for asyncio, on pyzmq's asyncio sockets (transport/aio.py).

    from nodes import AsyncClient

    async with AsyncClient("tcp://127.0.0.1:5555") as client:
        job = await client.enqueue("square", [7])        # or a @worker.handler function
        print(await job.result(timeout=10))             # 49, or JobFailed / TimeoutError
        print((await client.get(job)).state)            # "completed"

One client serves every coroutine of one event loop: each request is in flight on the same
DEALER per coordinator, its reply matched by `rid`, so a thousand concurrent `get(wait=...)`
cost one socket, not a thousand. Make it, use it and close it on one loop (pyzmq's asyncio
sockets belong to the loop that first used them); in a web app, open it in the lifespan
(examples/fastapi_service.py). The request bodies and what replies mean come from
nodes/client_requests.py, the same code `Client` runs, so both raise the same errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import zmq.asyncio

from nodes.client_requests import (
    REQUEST_TIMEOUT_S,
    BoundJobId,
    Job,
    batch_body,
    enqueue_body,
    get_body,
    job_of,
    jobs_body,
    jobs_of,
    outcome,
    reply_or_raise,
    stats_body,
    traced,
)
from transport import messages as m
from transport.aio import AsyncRequester, Reply
from transport.endpoints import addresses_of
from transport.errors import ConnectionLost

if TYPE_CHECKING:
    from transport.zmq import CurveClientConfig


class AsyncJobHandle(BoundJobId):
    """A job id (it is the id string) whose result can be awaited."""

    _client: AsyncClient

    async def result(self, timeout: float = REQUEST_TIMEOUT_S) -> Any:
        """Wait for the job to end; return its result or raise JobFailed / TimeoutError."""
        return outcome(await self._client.get(self, wait=timeout), timeout)


class AsyncClient:
    """The client half of PROTOCOL.md section 4 for coroutines of one event loop.

    `connect` may list several coordinators sharing one database: each request goes to the
    leader, found again when a standby's `not_leader` names another. Each client makes its own
    `zmq.asyncio.Context` (destroyed by `close`), so closing one never touches another's sockets
    and nothing is bound at import time; pass `context` to share one among many clients (it is
    then the caller's to destroy).
    """

    def __init__(
        self,
        connect: str | Sequence[str] = "tcp://127.0.0.1:5555",
        *,
        curve: CurveClientConfig | None = None,
        timeout: float = REQUEST_TIMEOUT_S,
        context: zmq.asyncio.Context | None = None,
    ) -> None:
        addresses = addresses_of(connect)
        self._owns_context = context is None
        self._context = context if context is not None else zmq.asyncio.Context()
        # Several coordinators: a dropped or refused one is passed at once, as by Client.
        watch = len(addresses) > 1
        self._requester = AsyncRequester(addresses, self._context, curve=curve, watch=watch)
        self.timeout = timeout
        # Each request runs as a task of its own, so `close` can end them all at once: a
        # coroutine pausing between coordinators would otherwise wait out its whole timeout.
        self._in_flight: set[asyncio.Task[Reply | None]] = set()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def request(self, kind: str, timeout: float | None = None, **fields: Any) -> Reply:
        """Send one request and await its reply; raise the matching CorralError on error, and
        ConnectionLost when no reply comes within `timeout` or the client is closed meanwhile."""
        if self._closed:
            raise ConnectionLost("client is closed")
        limit = self.timeout if timeout is None else timeout
        call = asyncio.ensure_future(self._requester.request({"type": kind, **fields}, limit))
        self._in_flight.add(call)
        try:
            reply = await call
        except asyncio.CancelledError:
            task = asyncio.current_task()
            # Our own caller being cancelled stays a cancellation; `close` ending the request
            # under it is a lost connection, as a sync Client's closed socket is.
            if self._closed and not (task is not None and task.cancelling()):
                raise ConnectionLost(f"client closed before the reply to {kind}") from None
            raise
        finally:
            self._in_flight.discard(call)
        return reply_or_raise(kind, reply, limit)

    # -- the API ------------------------------------------------------------------------------

    async def enqueue(
        self,
        job_type: str | Callable[..., Any],
        args: list[Any] | tuple[Any, ...] = (),
        *,
        request_id: str | None = None,
        **options: Any,
    ) -> AsyncJobHandle:
        """Enqueue one job; options are JobSpec fields (queue, priority, scheduled_at, ...).

        `job_type` is a type name, or a handler function decorated with `@worker.handler`,
        whose defaults apply unless overridden here. The request carries `request_id` (a fresh
        one unless given), so a resend of it after a lost reply gets this job, not a second.
        """
        with traced(enqueue_body(job_type, args, options, request_id)) as body:
            reply = await self.request("enqueue", **body)
        return AsyncJobHandle(reply["job_id"], self)

    async def enqueue_many(
        self, specs: list[dict[str, Any]], *, request_id: str | None = None
    ) -> list[AsyncJobHandle]:
        """Enqueue a batch atomically: all accepted, or an error and none created. Its
        `request_id` (fresh unless given) makes a resend answer with the same jobs."""
        with traced(batch_body(specs, request_id)) as body:
            reply = await self.request("enqueue", **body)
        return [AsyncJobHandle(job_id, self) for job_id in reply["job_ids"]]

    async def get(self, job_id: str, wait: float = 0.0) -> Job:
        """The job as stored; with `wait`, held until it is terminal or `wait` passes."""
        fields = get_body(job_id, wait)
        return job_of(await self.request("get", timeout=wait + self.timeout, **fields))

    async def cancel(self, job_id: str) -> str:
        """Cancel a job; returns its state afterwards."""
        return (await self.request("cancel", job_id=str(job_id)))["state"]

    async def retry(self, job_id: str) -> str:
        """Put a discarded job (the dead set) back in its queue; returns its new state."""
        return (await self.request("retry", job_id=str(job_id)))["state"]

    async def delete(self, job_id: str) -> None:
        """Forget an ended job for good (extension "Delete", admin role). UnknownJob if there
        is no such job; BadRequest if it has not ended (cancel it first)."""
        await self.request("delete", job_id=str(job_id))

    async def stats(self, *, series: bool = False) -> dict[str, Any]:
        """Counts per queue and state, the workers, unroutable, limited and paused queues; with
        `series`, throughput and latency per second too (as `Client.stats`)."""
        return m.stats_view(await self.request("stats", **stats_body(series)))

    async def jobs(
        self,
        queue: str | None = None,
        state: str | None = None,
        job_type: str | None = None,
        limit: int = 50,
    ) -> list[Job]:
        """Stored jobs matching every filter given, newest first (the `jobs` extension)."""
        return jobs_of(await self.request("jobs", **jobs_body(queue, state, job_type, limit)))

    async def direct(self, worker_id: str, state: str) -> None:
        """Tell a worker to go `running`, `quiet` or `terminate` on its next beat."""
        await self.request("direct", worker_id=worker_id, state=state)

    async def pause_queue(self, queue: str) -> bool:
        """Stop handing out the queue's jobs (enqueues still land); durable. Returns True."""
        return (await self.request("pause_queue", queue=queue))["paused"]

    async def resume_queue(self, queue: str) -> bool:
        """Hand out the queue's jobs again. Returns False (not paused)."""
        return (await self.request("resume_queue", queue=queue))["paused"]

    async def ping(self) -> None:
        await self.request("ping")

    async def close(self) -> None:
        """Close the sockets (and the context, if this client made it); requests still in
        flight raise ConnectionLost. Idempotent."""
        if self._closed:
            return
        self._closed = True
        calls = list(self._in_flight)
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        await self._requester.close()
        if self._owns_context:
            self._context.destroy(linger=0)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
