"""Admitting new jobs: made from their specs, stored (the store answers duplicates of a unique
key and replays of a request id), announced, and handed to their queues. Shared by an enqueue
(queue_actor) and a schedule's slot (scheduler), so both make jobs the same way."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from actors import events, states
from actors.context import CoordinatorContext
from actors.jobs import Job
from actors.mail import Defer, Hold
from actors.store.base import Replay
from transport.jobspec import JobSpec


@dataclass(frozen=True)
class Admitted:
    """Position by position: the job's id and state (a duplicate's: the job already holding
    its unique key), read when the jobs were stored, before any was handed out (a job served
    to a parked fetch at once is already active), and whether it was a duplicate."""

    ids: list[str]
    states: list[str]
    duplicate: list[bool]


def admit(
    ctx: CoordinatorContext,
    specs: Sequence[JobSpec],
    request_id: str | None,
    hold_here: tuple[str, Callable[[Hold], None]] | None = None,
) -> Admitted | Replay:
    """Make, store and hand out the jobs of one request; a Replay (nothing made) when its
    request id made jobs already. `hold_here`: the calling queue's name and its own hold, so
    its jobs skip its mailbox. Raises LookupError past the queue limit, or for a job that
    depends on no known job, before storing; DuplicateJob (from the store) for a job id a stored
    job has."""
    now = ctx.clock.now()
    jobs = [
        Job.from_spec(spec, spec.id or ctx.ids.new(), now, next(ctx.seq), request_id)
        for spec in specs
    ]
    return store_and_hand_out(ctx, jobs, hold_here)


def store_and_hand_out(
    ctx: CoordinatorContext,
    jobs: list[Job],
    hold_here: tuple[str, Callable[[Hold], None]] | None = None,
) -> Admitted | Replay:
    """Store new jobs (made by `admit`, or a workflow's), then hand each to its holder: its
    queue, or the FlowActor for a deferred one."""
    targets = {job.queue: ctx.queues.get(job.queue) for job in jobs}
    check_parents(ctx, jobs)
    duplicates = ctx.store.add(jobs)
    if isinstance(duplicates, Replay):
        return duplicates
    pairs = list(zip(jobs, duplicates, strict=True))
    admitted = Admitted(
        [job.id if dup is None else dup["id"] for job, dup in pairs],
        [job.state if dup is None else dup["state"] for job, dup in pairs],
        [dup is not None for _, dup in pairs],
    )
    fresh: dict[str, list[Job]] = defaultdict(list)
    deferred: list[Job] = []
    for job, existing in pairs:
        if existing is None:
            (deferred if job.state == states.DEFERRED else fresh[job.queue]).append(job)
            ctx.events.emit(events.JOB_ENQUEUED, job=job)
    if deferred:
        ctx.flows.tell(Defer(deferred))
    for queue, queued in fresh.items():
        if hold_here is not None and queue == hold_here[0]:
            hold_here[1](Hold(queued))
        else:
            targets[queue].tell(Hold(queued))
    return admitted


def check_parents(ctx: CoordinatorContext, jobs: list[Job]) -> None:
    """Every job a new job waits for exists already. A workflow's steps wait for earlier steps
    of the same request, which it compiled so (never a cycle); any other job waits for stored
    jobs only, so a guessed id of its own batch (itself, or a cycle) is refused."""
    for job in jobs:
        flow = job.flow
        if flow is not None and not flow.workflow:
            for parent_id in flow.depends_on:
                if ctx.store.get(parent_id) is None:
                    raise LookupError(f"depends_on: no job {parent_id}")
