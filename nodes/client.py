"""Client: enqueue jobs, read them, cancel them, read cluster stats. Thread-safe."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nodes.job_types import JobType, job_spec
from nodes.request_ids import new_request_id
from nodes.schedule_requests import ScheduleRequests
from nodes.workflow_requests import WorkflowRequests
from transport import messages as m
from transport.base import Connector, Requester
from transport.endpoints import Endpoints, addresses_of
from transport.errors import ConnectionLost, CorralError, error_for_code
from transport.failover import FailoverRequester
from transport.requesters import ConnectorRequester, ZmqRequester

if TYPE_CHECKING:
    from transport.zmq import CurveClientConfig

REQUEST_TIMEOUT_S = 10.0
@dataclass(frozen=True)
class Job:
    """A job as `get` returns it (PROTOCOL.md section 4); `raw` keeps every wire field."""

    id: str
    type: str
    state: str
    attempt: int
    args: list[Any]
    queue: str
    result: Any = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> Job:
        return cls(
            id=wire["id"],
            type=wire["type"],
            state=wire["state"],
            attempt=wire.get("attempt", 0),
            args=wire.get("args", []),
            queue=wire.get("queue", "default"),
            result=wire.get("result"),
            errors=wire.get("errors", []),
            raw=wire,
        )

    @property
    def terminal(self) -> bool:
        return self.state in ("completed", "discarded", "cancelled")


class JobFailed(CorralError):
    """The job ended discarded or cancelled; `job` holds its errors."""

    code = "job_failed"

    def __init__(self, job: Job) -> None:
        last = job.errors[-1] if job.errors else {"type": job.state, "message": ""}
        super().__init__(f"job {job.id} {job.state}: {last.get('type')}: {last.get('message')}")
        self.job = job


class JobHandle(str):
    """A job id (it is the id string) that can also wait for the job's result."""

    _client: Client

    def __new__(cls, job_id: str, client: Client) -> JobHandle:
        handle = super().__new__(cls, job_id)
        handle._client = client
        return handle

    @property
    def id(self) -> str:
        return str(self)

    def result(self, timeout: float = REQUEST_TIMEOUT_S) -> Any:
        """Wait for the job to end; return its result or raise JobFailed / TimeoutError."""
        job = self._client.get(self, wait=timeout)
        if job.state == "completed":
            return job.result
        if job.terminal:
            raise JobFailed(job)
        raise TimeoutError(f"job {self} still {job.state} after {timeout} s")


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
        body = self._requester.request({"type": kind, "rid": next(self._rids), **fields}, limit)
        if body is None:
            unit = "virtual s" if self._virtual else "s"
            raise ConnectionLost(f"no reply to {kind} within {limit} {unit}")
        if body.get("type") == "error":
            code, message = body.get("code", "internal"), body.get("message", "")
            raise error_for_code(code, message, context=kind, leader=body.get("leader"))
        return body

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
        kind: Any = getattr(job_type, "corral_job", None) or JobType(str(job_type))
        reply = self.request(
            "enqueue",
            job=job_spec(kind.name, args, **{**kind.defaults, **options}),
            request_id=request_id or new_request_id(),
        )
        return JobHandle(reply["job_id"], self)

    def enqueue_many(
        self, specs: list[dict[str, Any]], *, request_id: str | None = None
    ) -> list[JobHandle]:
        """Enqueue a batch atomically: all accepted, or an error and none created. Its
        `request_id` (fresh unless given) makes a resend answer with the same jobs."""
        reply = self.request("enqueue", jobs=specs, request_id=request_id or new_request_id())
        return [JobHandle(job_id, self) for job_id in reply["job_ids"]]

    def get(self, job_id: str, wait: float = 0.0) -> Job:
        """The job as stored; with `wait`, held until it is terminal or `wait` passes."""
        fields: dict[str, Any] = {"job_id": str(job_id)}
        if wait > 0:
            fields["wait"] = wait
        reply = self.request("get", timeout=wait + self.timeout, **fields)
        return Job.from_wire(reply["job"])

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
        reply = self.request("stats", series=True) if series else self.request("stats")
        return m.stats_view(reply)

    def jobs(
        self,
        queue: str | None = None,
        state: str | None = None,
        job_type: str | None = None,
        limit: int = 50,
    ) -> list[Job]:
        """Stored jobs matching every filter given, newest first (the `jobs` extension)."""
        filters = {"queue": queue, "state": state, "job_type": job_type, "limit": limit}
        reply = self.request("jobs", **{k: v for k, v in filters.items() if v is not None})
        return [Job.from_wire(wire) for wire in reply["jobs"]]

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
