"""Messages the coordinator's actors tell each other. Small, immutable, cheap to build."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actors.jobs import Job
from actors.routing import WorkerProfile
from transport.messages import Request, Rid


@dataclass(frozen=True, slots=True)
class Inbound:
    """A validated wire request for the actor that owns what it is about."""

    peer: bytes
    request: Request


@dataclass(frozen=True, slots=True)
class Touch:
    """Something arrived from this connection (counts as life for its worker)."""

    peer: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    """Supervisor -> queue: pop up to `count` jobs this worker may take."""

    token: int
    worker: WorkerProfile
    count: int


@dataclass(frozen=True, slots=True)
class Claimed:
    """Queue -> supervisor: the jobs popped for a claim (possibly none), or for a standing
    claim (`standing`, never empty)."""

    token: int
    worker_id: str
    queue: str
    jobs: list[Job]
    standing: bool = False


@dataclass(frozen=True, slots=True)
class Stand:
    """Supervisor -> queue: a parked fetch's standing claim, served the moment jobs this
    worker may take wait in the queue. A newer Stand from the same worker replaces it.

    `rank` orders the standing claims of one queue: fewest active jobs, then longest parked.
    """

    token: int
    worker: WorkerProfile
    count: int
    rank: tuple[int, float]


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Supervisor -> queue: the fetch behind this worker's standing claim no longer waits."""

    token: int
    worker_id: str


@dataclass(frozen=True, slots=True)
class Hold:
    """-> queue: hold these waiting jobs (new, returned, recovered or to retry later)."""

    jobs: list[Job]


@dataclass(frozen=True, slots=True)
class Restore:
    """Coordinator -> queue, at a restart: hold the waiting jobs of these records (oldest
    first, `records[i]` numbered `first_seq + i` in the queue's order), from `start` on. The
    queue unpacks them itself, a batch at a time (queue_actor.RESTORE_BATCH_JOBS)."""

    records: list[bytes]
    first_seq: int
    start: int = 0


@dataclass(frozen=True, slots=True)
class SetPaused:
    """Dispatcher -> queue: pause or resume the queue (actors.pauses), then reply to `peer`."""

    paused: bool
    peer: bytes
    rid: Rid


@dataclass(frozen=True, slots=True)
class LimitFreed:
    """Supervisor -> queue: a job of this limit's bucket stopped being active; the queue holds
    jobs back for it (actors.limits)."""

    bucket: tuple[str, str]


@dataclass(frozen=True, slots=True)
class Promote:
    """Reaper -> queue: discard the jobs whose expires_at came, make due scheduled and
    retryable jobs available."""

    now: float


@dataclass(frozen=True, slots=True)
class RoutingUpdate:
    """Supervisor -> queues: the live registered workers changed."""

    workers: tuple[WorkerProfile, ...]


@dataclass(frozen=True, slots=True)
class Defer:
    """-> the FlowActor: new (or restored) deferred jobs, each waiting for its parents."""

    jobs: list[Job]


@dataclass(frozen=True, slots=True)
class ParentEnded:
    """Event hook -> the FlowActor: a job that deferred jobs wait for has ended."""

    job_id: str
    state: str
    result: Any = None  # when completed: what its dependents may take


@dataclass(frozen=True, slots=True)
class CancelJob:
    """-> the job's owner by its stored state: a client asked to cancel it; who asked waits in
    the coordinator's Cancellations (actors/cancellation.py)."""

    job_id: str


@dataclass(frozen=True, slots=True)
class FetchExpired:
    """Clock -> supervisor: a parked fetch's wait ran out."""

    worker_id: str
    token: int


@dataclass(frozen=True, slots=True)
class Tick:
    """Reaper -> supervisor: check liveness and reservation deadlines."""

    now: float


@dataclass(frozen=True, slots=True)
class Orphans:
    """Coordinator start -> supervisor: jobs the store holds as active (a restart)."""

    jobs: list[Job]


@dataclass(frozen=True, slots=True)
class Revive:
    """-> queue: a discarded job retried by hand goes back to available."""

    job_id: str
    peer: bytes
    rid: Rid


@dataclass(frozen=True, slots=True)
class DeleteJob:
    """-> queue: forget an ended job of this queue for good (extension "Delete"), then reply
    to `peer`. The queue is where a manual retry (Revive) of the job runs too: the two never
    interleave."""

    job_id: str
    peer: bytes
    rid: Rid
