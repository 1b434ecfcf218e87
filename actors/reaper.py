"""ReaperActor: owns nothing but its schedule. Each tick it asks the owners to act: the
supervisor declares silent workers dead and expires reservations, the queues discard expired
jobs and promote due ones, the scheduler makes the jobs of due schedules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors.base import CorralActor
from actors.clock import Timer
from actors.context import CoordinatorContext
from actors.mail import Promote, Tick


@dataclass(frozen=True, slots=True)
class Reap:
    """Clock -> reaper: time for a round."""


class ReaperActor(CorralActor):
    """Ticks every `reaper_interval` seconds of the injected clock."""

    def __init__(self, activity: Any, ctx: CoordinatorContext) -> None:
        super().__init__(activity)
        self.ctx = ctx
        self._timer: Timer | None = None

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        return {Reap: self._reap}

    def on_start(self) -> None:
        self._schedule()

    def on_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _schedule(self) -> None:
        mailbox = self.mailbox()
        self._timer = self.ctx.clock.call_later(
            self.ctx.settings.reaper_interval, lambda: mailbox.tell(Reap())
        )

    def _reap(self, _: Reap) -> None:
        now = self.ctx.clock.now()
        self.ctx.supervisor.tell(Tick(now))
        self.ctx.scheduler.tell(Tick(now))
        for queue in self.ctx.queues.all():
            queue.tell(Promote(now))
        self.ctx.store.prune(now)
        self.ctx.limiter.forget_full()
        self._schedule()
