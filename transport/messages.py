"""Wire requests as frozen, slotted dataclasses: decoded and validated once, trusted inside."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

Rid = int | str
WORKER_STATES = ("running", "quiet", "terminate")
# PROTOCOL.md section 5, and `deferred` (the extension "Workflows": a job waiting for its
# parents); actors.states builds the lifecycle table on these names.
JOB_STATES = (
    "deferred",
    "scheduled",
    "available",
    "active",
    "retryable",
    "completed",
    "discarded",
    "cancelled",
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff of PROTOCOL.md section 5."""

    initial_interval: float = 1.0
    backoff_coefficient: float = 2.0
    max_interval: float = 300.0
    jitter: bool = True

    def to_wire(self) -> dict[str, Any]:
        return {
            "initial_interval": self.initial_interval,
            "backoff_coefficient": self.backoff_coefficient,
            "max_interval": self.max_interval,
            "jitter": self.jitter,
        }


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True, slots=True)
class Rate:
    """At most `count` starts per `per` seconds (a token bucket: `count` tokens, refilled at
    count/per a second)."""

    count: int
    per: float

    def to_wire(self) -> dict[str, Any]:
        return {"count": self.count, "per": self.per}


@dataclass(frozen=True, slots=True)
class JobLimit:
    """A job's limit fields (docs/PROTOCOL.md extension "Limits"): the key it is counted under,
    and its own limits, which take the place of any configured for its type or queue."""

    key: str | None = None
    concurrency: int | None = None
    rate: Rate | None = None

    @property
    def own(self) -> bool:
        """True when the job names a limit of its own (not only a key for a configured one)."""
        return self.concurrency is not None or self.rate is not None

    @classmethod
    def of_wire(cls, wire: Mapping[str, Any]) -> JobLimit | None:
        """The limit of a trusted Job map (a stored one), None when it names none."""
        key, concurrency, rate = (
            wire.get("concurrency_key"),
            wire.get("concurrency_limit"),
            wire.get("rate_limit"),
        )
        if key is None and concurrency is None and rate is None:
            return None
        return cls(key, concurrency, Rate(rate["count"], rate["per"]) if rate else None)

    def to_wire(self) -> dict[str, Any]:
        """The limit's fields of the Job map: only those set."""
        wire: dict[str, Any] = {}
        if self.key is not None:
            wire["concurrency_key"] = self.key
        if self.concurrency is not None:
            wire["concurrency_limit"] = self.concurrency
        if self.rate is not None:
            wire["rate_limit"] = self.rate.to_wire()
        return wire
# The route and meta of every job that has none: one shared map, read-only so that sharing it is
# safe (a dict per job cost 64 bytes each, twice, with a million jobs queued). msgpack cannot
# pack a mappingproxy: the wire forms give `{}` for it (actors.jobs, actors.store.record).
EMPTY_MAP: Mapping[str, Any] = MappingProxyType({})
NAMES_KEPT = 10_000
_names: dict[str, str] = {}


def shared_name(text: str) -> str:
    """One str object per distinct job type or queue name.

    msgpack decodes a new string per occurrence, so a million queued jobs would hold a million
    copies of "default". Not `sys.intern`: from Python 3.12 interned strings are immortal, and
    names are chosen by clients, so a stream of distinct names would never be freed. This cache
    forgets every name once it holds NAMES_KEPT (sharing is an optimisation, not a rule).
    """
    name = _names.get(text)
    if name is None:
        if len(_names) >= NAMES_KEPT:
            _names.clear()
        name = _names.setdefault(text, text)
    return name


ON_FAILURE = ("cancel", "continue")  # what a parent's failure does to its dependents


@dataclass(frozen=True, slots=True)
class Flow:
    """A job's place in a workflow (docs/PROTOCOL.md extension "Workflows"): the jobs it waits
    for, what their failure does to it, whether it gets their results as its last argument,
    and whether it belongs to a workflow (whose id is the request id that made it)."""

    depends_on: tuple[str, ...] = ()
    on_failure: str = "cancel"
    pass_results: bool = True
    workflow: bool = False

    def to_wire(self, request_id: str | None) -> dict[str, Any]:
        """The flow's fields of the Job map."""
        wire: dict[str, Any] = {"depends_on": list(self.depends_on), "on_failure": self.on_failure}
        if not self.pass_results:
            wire["pass_results"] = False
        if self.workflow and request_id is not None:
            wire["workflow_id"] = request_id
        return wire

    @classmethod
    def of_wire(cls, wire: Mapping[str, Any]) -> Flow | None:
        """The flow of a trusted Job map (a stored one), None when it has none."""
        if "depends_on" not in wire:
            return None
        return cls(
            tuple(wire["depends_on"]),
            wire.get("on_failure", "cancel"),
            wire.get("pass_results", True),
            "workflow_id" in wire,
        )


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a client sends, with every default filled in.

    Compact because a million queued jobs keep theirs: `args` a tuple (the shared `()` when
    empty), `route` and `meta` EMPTY_MAP when empty, `type` and `queue` shared strings
    (`shared_name`).
    """

    type: str
    args: tuple[Any, ...] = ()
    queue: str = "default"
    priority: int = 0
    scheduled_at: float | None = None
    max_attempts: int = 3
    retry: RetryPolicy = DEFAULT_RETRY
    timeout: float | None = None
    route: Mapping[str, str] = field(default_factory=lambda: EMPTY_MAP)
    unique_key: str | None = None
    meta: Mapping[str, Any] = field(default_factory=lambda: EMPTY_MAP)
    limit: JobLimit | None = None  # concurrency_key, concurrency_limit, rate_limit
    flow: Flow | None = None  # depends_on, on_failure, pass_results


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """The error a worker reports with `fail`."""

    type: str
    message: str
    retryable: bool = True
    backtrace: tuple[str, ...] = ()


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
    """One job of a workflow: its spec, the steps it waits for (indexes of earlier steps), and
    whether it takes their results as its last argument."""

    spec: JobSpec
    parents: tuple[int, ...] = ()
    pass_results: bool = True


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
