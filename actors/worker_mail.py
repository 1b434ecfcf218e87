"""Messages between a worker node's LinkActor (actors/link) and WorkerActor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FrameIn:
    """I/O thread -> link: one frame from the coordinator, on connection `link`."""

    link: int
    frame: bytes


@dataclass(frozen=True, slots=True)
class Dropped:
    """I/O thread -> link: connection `link` dropped (seen with several endpoints only)."""

    link: int


@dataclass(frozen=True, slots=True)
class Connect:
    """Open a new connection and say hello."""


@dataclass(frozen=True, slots=True)
class BeatDue:
    """Clock -> link: time to beat and to check the coordinator is still there."""


@dataclass(frozen=True, slots=True)
class BeatNow:
    """Node -> link: report the worker's state now (a graceful stop), off the schedule."""


@dataclass(frozen=True, slots=True)
class WorkerState:
    """Worker -> link: the worker's state changed (or a directive's state was applied)."""

    state: str


@dataclass(frozen=True, slots=True)
class Released:
    """Worker -> link: the handler of abandoned job `job_id` returned; its slot is free."""

    job_id: str


@dataclass(frozen=True, slots=True)
class Jobs:
    """Link -> worker: jobs fetched for you (wire form)."""

    jobs: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Outcome:
    """A job finished: its result, or its error when `error` is set."""

    job_id: str
    attempt: int
    result: Any = None
    error: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Worker -> link: jobs finished; report them (in one frame when the coordinator
    takes batches)."""

    items: tuple[Outcome, ...]


@dataclass(frozen=True, slots=True)
class FlushOutcomes:
    """Worker -> itself: report the outcomes gathered so far.

    Told when the first outcome of a batch is gathered, so it lands behind every `Finished`
    already queued: those join the batch, and no outcome waits on a timer.
    """


@dataclass(frozen=True, slots=True)
class Directive:
    """Link -> worker: the state to move to (None: stay) and the jobs to abandon."""

    state: str | None
    cancel_job_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Resumed:
    """Link -> worker: registered (again); keep only these of the jobs you reported."""

    job_ids: frozenset[str]
    reconnected: bool


@dataclass(frozen=True, slots=True)
class Finished:
    """Executor -> worker: a handler returned or raised."""

    job_id: str
    result: Any = None
    error: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Deregister:
    """Node -> link: end the session politely (graceful stop)."""
