"""Client: enqueue jobs, read them, cancel them, read cluster stats. Thread-safe."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

# Job, JobFailed, REQUEST_TIMEOUT_S, JobType and job_spec are imported from here by other code.
from nodes.client_requests import (
    REQUEST_TIMEOUT_S,
    BoundJobId,
    Job,
    JobFailed,
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
from nodes.job_types import JobType, job_spec
from nodes.schedule_requests import ScheduleRequests
from nodes.workflow_requests import WorkflowRequests
from transport import messages as m
from transport.base import Connector, Requester
from transport.endpoints import Endpoints, addresses_of
from transport.errors import ConnectionLost
from transport.failover import FailoverRequester
from transport.requesters import ConnectorRequester, ZmqRequester

if TYPE_CHECKING:
    from transport.zmq import CurveClientConfig

__all__ = ["REQUEST_TIMEOUT_S", "Client", "Job", "JobFailed", "JobHandle", "JobType", "job_spec"]


class JobHandle(BoundJobId):
    """A job id (it is the id string) that can also wait for the job's result."""

    _client: Client

    def result(self, timeout: float = REQUEST_TIMEOUT_S) -> Any:
        """Wait for the job to end; return its result or raise JobFailed / TimeoutError."""
        return outcome(self._client.get(self, wait=timeout), timeout)


class Client(ScheduleRequests, WorkflowRequests):
    """A DEALER connection speaking the client half of PROTOCOL.md section 4.

    `connect` may list several coordinators sharing one database: each request goes to the
    leader, found again when it changes (transport/failover.py). `connector` reaches them
    another way (a simulation's network): one Connector, or `Endpoints` of them.
    """

    def __init__(
        self,
        connect: str | Sequence[str] = "tcp://127.0.0.1:5555",
        *,
        connector: Connector | Endpoints[Connector] | None = None,
        curve: CurveClientConfig | None = None,
        timeout: float = REQUEST_TIMEOUT_S,
        pump: Callable[[], float] | None = None,
    ) -> None:
        # Over ZeroMQ each calling thread gets a socket of its own and reads its reply itself
        # (transport/requesters.py); a `connector` (a simulation's network) is used as given.
        if connector is None:
            addresses = addresses_of(connect)
            watch = len(addresses) > 1  # a dead coordinator is passed at once, not waited out
            endpoints: Endpoints[Requester] = Endpoints.of(
                addresses, lambda address: ZmqRequester(address, curve=curve, watch=watch)
            )
        elif isinstance(connector, Endpoints):
            endpoints = connector.map(lambda _, each: ConnectorRequester(each, pump))
        else:
            endpoints = Endpoints([("", ConnectorRequester(connector, pump))])
        self._requester: Requester = (
            endpoints.current if len(endpoints) == 1 else _failover(endpoints, pump)
        )
        self.timeout = timeout
        self._virtual = pump is not None  # timeouts are then virtual seconds
        self._rids = itertools.count(1)

    def request(self, kind: str, timeout: float | None = None, **fields: Any) -> dict[str, Any]:
        """Send one request and wait for its reply; raise the matching CorralError on error."""
        if self._requester.closed:
            raise ConnectionLost("client is closed")
        limit = self.timeout if timeout is None else timeout
        reply = self._requester.request({"type": kind, "rid": next(self._rids), **fields}, limit)
        return reply_or_raise(kind, reply, limit, "virtual s" if self._virtual else "s")

    # -- the API ------------------------------------------------------------------------------

    def enqueue(
        self,
        job_type: str | Callable[..., Any],
        args: list[Any] | tuple[Any, ...] = (),
        *,
        request_id: str | None = None,
        **options: Any,
    ) -> JobHandle:
        """Enqueue one job; options are JobSpec fields (queue, priority, scheduled_at, ...).

        `job_type` is a type name, or a handler function decorated with `@worker.handler`,
        whose defaults apply unless overridden here. The request carries `request_id` (a fresh
        one unless given), so a resend of it after a lost reply gets this job, not a second.
        """
        with traced(enqueue_body(job_type, args, options, request_id)) as body:
            reply = self.request("enqueue", **body)
        return JobHandle(reply["job_id"], self)

    def enqueue_many(
        self, specs: list[dict[str, Any]], *, request_id: str | None = None
    ) -> list[JobHandle]:
        """Enqueue a batch atomically: all accepted, or an error and none created. Its
        `request_id` (fresh unless given) makes a resend answer with the same jobs."""
        with traced(batch_body(specs, request_id)) as body:
            reply = self.request("enqueue", **body)
        return [JobHandle(job_id, self) for job_id in reply["job_ids"]]

    def get(self, job_id: str, wait: float = 0.0) -> Job:
        """The job as stored; with `wait`, held until it is terminal or `wait` passes."""
        return job_of(self.request("get", timeout=wait + self.timeout, **get_body(job_id, wait)))

    def cancel(self, job_id: str) -> str:
        """Cancel a job; returns its state afterwards."""
        return self.request("cancel", job_id=str(job_id))["state"]

    def retry(self, job_id: str) -> str:
        """Put a discarded job (the dead set) back in its queue; returns its new state."""
        return self.request("retry", job_id=str(job_id))["state"]

    def delete(self, job_id: str) -> None:
        """Forget an ended job (completed, discarded, cancelled) for good, before its retention
        would (extension "Delete", admin role). UnknownJob if there is no such job (or it was
        deleted already); BadRequest if it has not ended (cancel it first)."""
        self.request("delete", job_id=str(job_id))

    def stats(self, *, series: bool = False) -> dict[str, Any]:
        """Counts per queue and state, the workers, per queue the jobs no worker may take, and
        the paused queues; with `series`, also throughput and latency per second (`series`,
        when the coordinator has that extension); from coordinators sharing a database,
        `cluster` (leader, term, standbys)."""
        return m.stats_view(self.request("stats", **stats_body(series)))

    def jobs(
        self,
        queue: str | None = None,
        state: str | None = None,
        job_type: str | None = None,
        limit: int = 50,
    ) -> list[Job]:
        """Stored jobs matching every filter given, newest first (the `jobs` extension)."""
        return jobs_of(self.request("jobs", **jobs_body(queue, state, job_type, limit)))

    def direct(self, worker_id: str, state: str) -> None:
        """Tell a worker to go `running`, `quiet` or `terminate` on its next beat."""
        self.request("direct", worker_id=worker_id, state=state)

    def pause_queue(self, queue: str) -> bool:
        """Stop handing out the queue's jobs (enqueues still land); durable. Returns True."""
        return self.request("pause_queue", queue=queue)["paused"]

    def resume_queue(self, queue: str) -> bool:
        """Hand out the queue's jobs again. Returns False (not paused)."""
        return self.request("resume_queue", queue=queue)["paused"]

    def ping(self) -> None:
        self.request("ping")

    def close(self) -> None:
        self._requester.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _failover(
    endpoints: Endpoints[Requester], pump: Callable[[], float] | None
) -> FailoverRequester:
    """Several coordinators: time in real seconds, or in a simulation's virtual ones."""
    if pump is None:
        # Waits between rounds of coordinators: I/O time, not a node's clock.
        return FailoverRequester(endpoints, time.monotonic, threading.Event().wait)  # noqa: TID251

    def pause(seconds: float) -> None:
        started = pump()
        while pump() - started < seconds:
            pass

    return FailoverRequester(endpoints, pump, pause)
