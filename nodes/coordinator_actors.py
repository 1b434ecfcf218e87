"""The actors of a serving coordinator, started over its context, and the unfinished jobs of
its store handed back to them (a start, a restart, or a standby's takeover)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from itertools import islice

from actors import base, states
from actors.context import CoordinatorContext, QueueDirectory
from actors.flow_actor import FlowActor, FlowWatch
from actors.flows import FlowCore
from actors.listing import ListingActor
from actors.mail import Defer, Orphans, Restore
from actors.queue_actor import QueueActor
from actors.reaper import ReaperActor
from actors.routing import WorkerProfile
from actors.scheduler import SchedulerActor
from actors.series import Series
from actors.store.base import Store
from actors.worker_supervisor import WorkerSupervisor
from transport.messages import Schedule


def start_actors(
    ctx: CoordinatorContext,
    started: list[base.Mailbox],
    series: Series,
    schedules: tuple[Schedule, ...],
) -> Callable[[], None]:
    """Start every actor over `ctx` (queues as they are first used), appending each to
    `started`; returns what unsubscribes their event observers."""
    activity = ctx.activity

    def start_queue(name: str, workers: tuple[WorkerProfile, ...]) -> base.Mailbox:
        mailbox = base.start(QueueActor, activity, ctx, name, workers)
        started.append(mailbox)
        return mailbox

    ctx.queues = QueueDirectory(start_queue, ctx.settings.max_queues)
    ctx.supervisor = base.start(WorkerSupervisor, activity, ctx, series)
    ctx.listing = base.start(ListingActor, activity, ctx)
    ctx.scheduler = base.start(SchedulerActor, activity, ctx, schedules)
    flows = FlowCore()
    ctx.flows = base.start(FlowActor, activity, ctx, flows)
    started += [ctx.supervisor, ctx.listing, ctx.scheduler, ctx.flows]
    started.append(base.start(ReaperActor, activity, ctx))
    observers = [ctx.events.subscribe(series.observe)]
    observers.append(ctx.events.subscribe(FlowWatch(flows, ctx.flows).observe))

    def unobserve() -> None:
        for stop in observers:
            stop()

    return unobserve


def restore(ctx: CoordinatorContext, store: Store) -> None:
    """Restart over a durable store: waiting jobs go back to their queues, deferred ones to the
    FlowActor, active ones wait (as orphans) for their workers to reconnect and resume them.

    The store lists its jobs oldest first, as records: each queue unpacks its own, a batch at
    a time between its other messages, once the coordinator serves (mail.Restore). Unpacking a
    million queued jobs here kept a new leader from serving for ~5 s, and a Hold per job kept
    its queue busy for ~7 s more (bench/takeover.py)."""
    seq = ctx.seq
    active, deferred = [], []
    waiting: dict[str, list[bytes]] = {}
    for entry in store.unfinished():
        if entry.state == states.ACTIVE:
            active.append(entry.job(next(seq)))
        elif entry.state == states.DEFERRED:
            deferred.append(entry.job(next(seq)))
        else:
            waiting.setdefault(entry.queue, []).append(entry.blob)
    for queue, records in waiting.items():
        ctx.queues.get(queue).post(Restore(records, next(seq)))  # on its own thread
        deque(islice(seq, len(records) - 1), maxlen=0)  # its jobs take the next numbers
    if active:
        ctx.supervisor.tell(Orphans(active))
    if deferred:
        ctx.flows.tell(Defer(deferred))
