"""Wire requests as frozen, slotted dataclasses: decoded and validated once, trusted inside."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transport.jobspec import JobSpec

Rid = int | str
WORKER_STATES = ("running", "quiet", "terminate")


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """The error a worker reports with `fail`."""

    type: str
    message: str
    retryable: bool = True
    backtrace: tuple[str, ...] = ()
    requeue: bool = False  # extension "Requeue": back to available at once, no backoff


@dataclass(frozen=True, slots=True)
class Hello:
    rid: Rid
    role: str
    hostname: str
    pid: int


@dataclass(frozen=True, slots=True)
class Register:
    rid: Rid
    worker_id: str
    queues: tuple[str, ...]
    concurrency: int
    functions: frozenset[str]
    labels: dict[str, frozenset[str]]
    hostname: str
    pid: int
    previous_worker_id: str | None
    active_job_ids: tuple[str, ...]
    name: str | None = None  # the `name` extension: the worker's node name, for operators


@dataclass(frozen=True, slots=True)
class Beat:
    rid: Rid
    worker_id: str
    state: str
    active_job_ids: tuple[str, ...]
    progress: tuple[ProgressReport, ...] = ()  # extension "Progress"


@dataclass(frozen=True, slots=True)
class ProgressReport:
    """A running job's progress as its worker's beat reported it."""

    job_id: str
    fraction: float
    message: str


@dataclass(frozen=True, slots=True)
class Fetch:
    rid: Rid
    worker_id: str
    count: int
    queues: tuple[str, ...] | None
    wait: float


@dataclass(frozen=True, slots=True)
class Ack:
    rid: Rid
    worker_id: str
    job_id: str
    attempt: int
    result: Any


@dataclass(frozen=True, slots=True)
class Fail:
    rid: Rid
    worker_id: str
    job_id: str
    attempt: int
    error: ErrorInfo


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """One item of an `outcomes` request: an ack when `error` is None, else a fail."""

    job_id: str
    attempt: int
    result: Any = None
    error: ErrorInfo | None = None
    too_large: bool = False  # its result or error exceeds max_result_size: refused alone


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Extension (docs/PROTOCOL.md): several acks and fails of one worker in one frame."""

    rid: Rid
    worker_id: str
    outcomes: tuple[JobOutcome, ...]


@dataclass(frozen=True, slots=True)
class Deregister:
    rid: Rid
    worker_id: str


@dataclass(frozen=True, slots=True)
class Ping:
    """`identify` (an extension): the pong carries the coordinator's `instance`."""

    rid: Rid
    identify: bool = False


@dataclass(frozen=True, slots=True)
class Enqueue:
    """`batch` tells which reply shape the sender asked for (`job` vs `jobs`).

    `request_id` (extension, docs/PROTOCOL.md) names the request across retries: a second
    enqueue with it is answered with the jobs the first one made instead of new ones.
    """

    rid: Rid
    specs: tuple[JobSpec, ...]
    batch: bool
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Get:
    rid: Rid
    job_id: str
    wait: float


@dataclass(frozen=True, slots=True)
class Cancel:
    rid: Rid
    job_id: str


@dataclass(frozen=True, slots=True)
class Retry:
    """Extension (docs/PROTOCOL.md): put a discarded job back in its queue by hand."""

    rid: Rid
    job_id: str


@dataclass(frozen=True, slots=True)
class Delete:
    """Extension "Delete" (docs/PROTOCOL.md): forget an ended job for good, before its
    retention would."""

    rid: Rid
    job_id: str


@dataclass(frozen=True, slots=True)
class Stats:
    rid: Rid
    series: bool = False  # extension (docs/PROTOCOL.md): throughput and latency per second


@dataclass(frozen=True, slots=True)
class Jobs:
    """Extension (docs/PROTOCOL.md): list stored jobs, newest first, filtered."""

    rid: Rid
    queue: str | None
    state: str | None
    job_type: str | None
    limit: int


@dataclass(frozen=True, slots=True)
class Direct:
    rid: Rid
    worker_id: str
    state: str


@dataclass(frozen=True, slots=True)
class PauseQueue:
    """Extension (docs/PROTOCOL.md): `pause_queue` (paused) or `resume_queue` (not paused)."""

    rid: Rid
    queue: str
    paused: bool


OVERLAP_POLICIES = ("skip", "allow")  # actors/schedules.py says what each does
MISFIRE_POLICIES = ("once", "skip")
MIN_EVERY_S = 1.0


@dataclass(frozen=True)
class Schedule:
    """Extension (docs/PROTOCOL.md): periodic jobs. Exactly one of `cron` (5 fields or an
    alias such as `@hourly`, read in `timezone`) and `every` (seconds); `job` is the JobSpec
    map of the jobs it makes (validated)."""

    name: str
    job: dict[str, Any]
    cron: str | None = None
    every: float | None = None
    timezone: str = "UTC"
    overlap: str = "skip"
    misfire: str = "once"


@dataclass(frozen=True, slots=True)
class SchedulePut:
    rid: Rid
    schedule: Schedule


@dataclass(frozen=True, slots=True)
class ScheduleRemove:
    rid: Rid
    name: str


@dataclass(frozen=True, slots=True)
class SchedulePause:
    rid: Rid
    name: str
    paused: bool


@dataclass(frozen=True, slots=True)
class SchedulesList:
    rid: Rid


ScheduleRequest = SchedulePut | ScheduleRemove | SchedulePause | SchedulesList


@dataclass(frozen=True, slots=True)
class WorkflowStep:
    """One job of a workflow: its spec, the steps it waits for (indexes of earlier steps),
    whether it takes their results as its last argument, and its own failure policy (None: the
    workflow's; extension "Step policies")."""

    spec: JobSpec
    parents: tuple[int, ...] = ()
    pass_results: bool = True
    on_failure: str | None = None


@dataclass(frozen=True, slots=True)
class WorkflowSubmit:
    """Extension (docs/PROTOCOL.md, "Workflows"): chains and groups, compiled into steps in
    an order where every step follows its parents; made atomically."""

    rid: Rid
    steps: tuple[WorkflowStep, ...]
    on_failure: str = "cancel"
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class WorkflowGet:
    rid: Rid
    workflow_id: str
    limit: int


@dataclass(frozen=True, slots=True)
class WorkflowCancel:
    rid: Rid
    workflow_id: str


WorkflowRequest = WorkflowSubmit | WorkflowGet | WorkflowCancel


def stats_view(reply: dict[str, Any]) -> dict[str, Any]:
    """What a `stats` reply says, as clients hand it on: queues, workers, unroutable, limited
    and paused queues, and the extensions present (`series`, `cluster`; docs/PROTOCOL.md)."""
    view = {
        "queues": reply["queues"],
        "workers": reply["workers"],
        "unroutable": reply.get("unroutable", {}),
        "limited": reply.get("limited", {}),
        "paused": reply.get("paused", []),
    }
    for extension in ("series", "cluster"):
        if extension in reply:
            view[extension] = reply[extension]
    return view


WorkerRequest = Register | Beat | Fetch | Ack | Fail | Outcomes | Deregister
ClientRequest = (
    Enqueue
    | Get
    | Cancel
    | Retry
    | Delete
    | Stats
    | Jobs
    | Direct
    | PauseQueue
    | ScheduleRequest
    | WorkflowRequest
)
Request = Hello | WorkerRequest | ClientRequest | Ping

WORKER_REQUEST_TYPES = frozenset(
    {"register", "beat", "fetch", "ack", "fail", "outcomes", "deregister"}
)
# Extensions a coordinator announces in `workerregistered.extensions` (docs/PROTOCOL.md).
OUTCOMES_EXTENSION = "outcomes"
