"""WorkerSupervisor: the pykka shell of SupervisorCore (actors/supervisor_core.py).

It reads the clock once per message and hands `now` to the core, and it is the core's
SupervisorPort: replies go to the outbox, claims and holds to the queue actors, timers to the
clock, cancels to the coordinator's Cancellations. Claims are the only conversation with the
queues: the core tells a QueueActor `Claim` (or leaves a standing claim, `Stand`, for a parked
fetch), the queue answers `Claimed`, and jobs become active in the core.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors import pauses, states
from actors.base import CorralActor
from actors.clock import Timer
from actors.context import CoordinatorContext
from actors.jobs import Job
from actors.mail import (
    CancelJob,
    Claimed,
    FetchExpired,
    Inbound,
    LimitFreed,
    Orphans,
    Tick,
    Touch,
)
from actors.routing import WorkerProfile
from actors.series import Series
from actors.supervisor_core import SupervisorCore
from transport import codec
from transport import messages as m


class ShellPort:
    """SupervisorPort over a coordinator's context (the hot methods are bound once)."""

    def __init__(self, ctx: CoordinatorContext) -> None:
        self._ctx = ctx
        self.send = ctx.outbox
        self.emit = ctx.events.emit
        self.new_worker_id = ctx.ids.new
        self.forget_peer = ctx.greeted.discard
        self.cancel_asked = ctx.cancels.asked
        self.settle_cancel = ctx.cancels.settle
        self.cancel_missed = ctx.cancels.missed

    def tell_queue(self, queue: str, message: object) -> None:
        self._ctx.queues.get(queue).tell(message)

    def free_limit(self, job: Job) -> None:
        freed = self._ctx.limiter.release(job)
        if freed is not None:
            bucket, waiting = freed
            for queue in waiting:
                self.tell_queue(queue, LimitFreed(bucket))

    def take_limit(self, job: Job) -> None:
        limit = self._ctx.limiter.of(job)
        if limit is not None:
            self._ctx.limiter.force(limit)

    def open_queue(self, queue: str) -> None:
        self._ctx.queues.get(queue)

    def publish(self, workers: tuple[WorkerProfile, ...]) -> None:
        self._ctx.queues.publish(workers)

    def later(self, delay: float, message: object) -> Timer:
        mailbox = self._ctx.supervisor
        return self._ctx.clock.call_later(delay, lambda: mailbox.tell(message))


class WorkerSupervisor(CorralActor):
    """Owns the worker sessions, their leases and pending fetches (through its core)."""

    def __init__(
        self, activity: Any, ctx: CoordinatorContext, series: Series | None = None
    ) -> None:
        self.ctx = ctx
        self.series = series  # the coordinator's throughput and latency, for `stats {series}`
        self.clock = ctx.clock
        self.core = SupervisorCore(
            ctx.settings, ctx.store, ShellPort(ctx), ctx.rng, ctx.max_message_size
        )
        ctx.progress_of = self.core.progress_of
        super().__init__(activity)

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        core, now = self.core, self.clock.now
        return {
            Inbound: self._inbound,
            Touch: lambda message: core.touch(now(), message.peer),
            Claimed: lambda message: core.claimed(now(), message),
            FetchExpired: lambda message: core.fetch_expired(now(), message),
            CancelJob: lambda message: core.cancel(now(), message.job_id),
            Tick: lambda message: core.tick(message.now),
            Orphans: lambda message: core.adopt(now(), message.jobs),
        }

    def _inbound(self, message: Inbound) -> None:
        request = message.request
        if type(request) is m.Stats:
            self._stats(message.peer, request)
        else:
            self.core.handle(self.clock.now(), message.peer, request)

    def _stats(self, peer: bytes, request: m.Stats) -> None:
        """The `stats` reply: the store's counts per queue, and every session, live or ended."""
        ctx = self.ctx
        self.core.touch(self.clock.now(), peer)
        counts = ctx.store.counts()
        paused = pauses.paused_queues(ctx.store.settings())
        for name in (*ctx.queues.names(), *paused):  # a paused queue is listed even if empty
            counts.setdefault(name, dict.fromkeys(states.JOB_STATES, 0))
        unroutable = {name: n for name, n in sorted(ctx.unroutable.items()) if n}
        limited = {name: n for name, n in sorted(ctx.limited.items()) if n}
        workers = self.core.sessions.stats(ctx.settings.heartbeat_interval)
        extra: dict[str, Any] = {}
        if request.series and self.series is not None:
            extra["series"] = self.series.snapshot(self.clock.now())
        if ctx.cluster is not None:
            extra["cluster"] = ctx.cluster()
        frame = codec.reply(
            request.rid,
            queues=counts,
            workers=workers,
            unroutable=unroutable,
            limited=limited,
            paused=paused,
            **extra,
        )
        ctx.outbox(peer, frame)

    def on_handler_error(self, message: Any) -> None:
        if isinstance(message, Inbound):
            frame = codec.error("internal", "the supervisor failed", message.request.rid)
            self.ctx.outbox(message.peer, frame)
        elif isinstance(message, CancelJob):
            self.ctx.cancels.failed(message.job_id, "the supervisor failed")
