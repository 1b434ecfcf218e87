"""The pure half of a client (docs/PROTOCOL.md section 4): the bodies of its requests and what
their replies mean, shared by `Client` (threads, nodes/client.py) and `AsyncClient` (asyncio,
nodes/async_client.py). No sockets and no waiting here: each client only sends a body and reads
its reply, so the two cannot drift apart (h11's split of protocol from I/O).

`enqueue_body` and `batch_body` are the only builders of an `enqueue` request: whatever every
enqueue must carry (a request id today) is added there, once, for both clients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Self

from actors import tracing
from nodes.job_types import JobType, job_spec
from nodes.request_ids import new_request_id
from transport.errors import ConnectionLost, CorralError, error_for_code

REQUEST_TIMEOUT_S = 10.0
Body = dict[str, Any]


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

    @property
    def progress(self) -> dict[str, Any] | None:
        """What the running attempt last reported: {fraction, message, updated_at, attempt}
        (extension "Progress"), or None."""
        return self.raw.get("progress")


class JobFailed(CorralError):
    """The job ended discarded or cancelled; `job` holds its errors."""

    code = "job_failed"

    def __init__(self, job: Job) -> None:
        last = job.errors[-1] if job.errors else {"type": job.state, "message": ""}
        super().__init__(f"job {job.id} {job.state}: {last.get('type')}: {last.get('message')}")
        self.job = job


class BoundJobId(str):
    """A job id (it is the id string) bound to the client that enqueued it; each client's
    handle adds a `result` that waits its way (`JobHandle`, `AsyncJobHandle`)."""

    _client: Any

    def __new__(cls, job_id: str, client: Any) -> Self:
        handle = super().__new__(cls, job_id)
        handle._client = client
        return handle

    @property
    def id(self) -> str:
        return str(self)


# -- request bodies ---------------------------------------------------------------------------


def enqueue_body(
    job_type: str | Callable[..., Any],
    args: Sequence[Any],
    options: dict[str, Any],
    request_id: str | None,
) -> Body:
    """The fields of an `enqueue` of one job. `job_type` is a type name, or a handler decorated
    with `@worker.handler`, whose defaults apply unless `options` override them. The request id
    is fresh unless given, so a resend after a lost reply gets this job, not a second."""
    kind: Any = getattr(job_type, "corral_job", None) or JobType(str(job_type))
    return {
        "job": job_spec(kind.name, args, **{**kind.defaults, **options}),
        "request_id": request_id or new_request_id(),
    }


def batch_body(specs: list[dict[str, Any]], request_id: str | None) -> Body:
    """The fields of an `enqueue` of a batch (JobSpec maps, made all or none)."""
    return {"jobs": specs, "request_id": request_id or new_request_id()}


@contextmanager
def traced(body: Body) -> Iterator[Body]:
    """Send an `enqueue` body inside this: with OpenTelemetry, a producer span covers the
    request and every JobSpec's `meta` carries its trace context (actors/tracing.py); without
    it, `body` comes back as it is."""
    specs: list[dict[str, Any]] = [body["job"]] if "job" in body else body["jobs"]
    with _enqueue_span(specs) if tracing.recording() else nullcontext():
        carrier = tracing.inject(None)  # once: every spec of the request shares the span
        if not carrier:
            yield body
            return
        marked = [{**spec, "meta": {**carrier, **(spec.get("meta") or {})}} for spec in specs]
        yield {**body, "job": marked[0]} if "job" in body else {**body, "jobs": marked}


def _enqueue_span(specs: list[dict[str, Any]]) -> AbstractContextManager[None]:
    """The producer span of an enqueue, named after its one job type (else `batch`)."""
    kinds = {spec.get("type") for spec in specs}
    queues = {spec.get("queue", "default") for spec in specs}
    job_type = str(kinds.pop()) if len(kinds) == 1 else "batch"
    return tracing.enqueue_span(job_type, str(queues.pop()) if len(queues) == 1 else None)


def get_body(job_id: str, wait: float) -> Body:
    """The fields of a `get`; with `wait` the coordinator holds the reply until the job ends."""
    body: Body = {"job_id": str(job_id)}
    if wait > 0:
        body["wait"] = wait
    return body


def jobs_body(queue: str | None, state: str | None, job_type: str | None, limit: int) -> Body:
    """The fields of a `jobs` listing: only the filters given."""
    filters = {"queue": queue, "state": state, "job_type": job_type, "limit": limit}
    return {key: value for key, value in filters.items() if value is not None}


def stats_body(series: bool) -> Body:
    return {"series": True} if series else {}


# -- replies ----------------------------------------------------------------------------------


def reply_or_raise(kind: str, reply: Body | None, limit: float, unit: str = "s") -> Body:
    """The reply to a `kind` request; ConnectionLost when none came within `limit` (in `unit`),
    the matching CorralError when it is an error."""
    if reply is None:
        raise ConnectionLost(f"no reply to {kind} within {limit} {unit}")
    if reply.get("type") == "error":
        code, message = reply.get("code", "internal"), reply.get("message", "")
        raise error_for_code(code, message, context=kind, leader=reply.get("leader"))
    return reply


def job_of(reply: Body) -> Job:
    return Job.from_wire(reply["job"])


def jobs_of(reply: Body) -> list[Job]:
    return [Job.from_wire(wire) for wire in reply["jobs"]]


def outcome(job: Job, timeout: float) -> Any:
    """What waiting `timeout` seconds for a job ended with: its result, or JobFailed (discarded,
    cancelled), or TimeoutError (not ended yet)."""
    if job.state == "completed":
        return job.result
    if job.terminal:
        raise JobFailed(job)
    raise TimeoutError(f"job {job.id} still {job.state} after {timeout} s")
