"""LinkActor: the pykka shell around LinkCore. It unpacks messages, calls the core with the
clock's `now`, and performs the effects: frames on the connection, timers, the worker's mail."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from actors.base import Activity, CorralActor, Mailbox
from actors.clock import Clock, Timer
from actors.link.core import LinkCore
from actors.link.effects import Arm, Close, Effect, Open, Send, Tell, TimerKind
from actors.progress import ProgressBoard
from actors.worker_mail import (
    BeatDue,
    BeatNow,
    Connect,
    Deregister,
    Dropped,
    FrameIn,
    Outcomes,
    Released,
    WorkerState,
)
from actors.worker_settings import WorkerSettings
from transport.base import ClientConnection, Connector
from transport.endpoints import Endpoints


class LinkActor(CorralActor):
    """Owns the connection and the timers; LinkCore owns every decision (which endpoint too)."""

    def __init__(
        self,
        activity: Activity,
        endpoints: Endpoints[Connector],
        settings: WorkerSettings,
        worker: Mailbox,
        clock: Clock,
        rng: random.Random | None = None,
        board: ProgressBoard | None = None,
    ) -> None:
        super().__init__(activity)
        self.board = board or ProgressBoard()  # the handlers' progress, read at each beat
        self.endpoints = endpoints
        self.worker = worker
        self.clock = clock
        self.core = LinkCore(settings, rng or random.Random(), clock.now(), endpoints)
        self.link: ClientConnection | None = None
        self._timers: dict[TimerKind, Timer] = {}

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        # Called by CorralActor.__init__ before the core exists: each handler looks it up.
        return {
            Connect: lambda _: self._perform(self.core.connect(self._now())),
            FrameIn: lambda m: self._perform(self.core.frame(m.link, m.frame, self._now())),
            Dropped: lambda m: self._perform(self.core.dropped(m.link, self._now())),
            BeatDue: lambda _: self._beat(due=True),
            BeatNow: lambda _: self._beat(due=False),
            Outcomes: lambda m: self._perform(self.core.outcomes(m.items, self._now())),
            WorkerState: lambda m: self._perform(self.core.worker_changed(self._now(), m.state)),
            Released: lambda m: self._perform(
                self.core.worker_changed(self._now(), released=m.job_id)
            ),
            Deregister: lambda _: self._perform(self.core.leave(self._now())),
        }

    def on_start(self) -> None:
        # No Connect here: the node tells it once the WorkerActor knows this link, or jobs
        # could reach a WorkerActor with nowhere to send their outcomes.
        self._perform(self.core.start())

    def on_stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._close()

    def status(self) -> dict[str, Any]:
        """Read by the node (an ask at the edge)."""
        return self.core.status()

    def _beat(self, *, due: bool) -> None:
        self._perform(self.core.beat(self._now(), due=due, progress=self.board.snapshot()))

    def _now(self) -> float:
        return self.clock.now()

    def _perform(self, effects: list[Effect]) -> None:
        for effect in effects:
            if type(effect) is Send:
                if self.link is not None:
                    self.link.send(effect.frame)
            elif type(effect) is Tell:
                self.worker.tell(effect.message)
            elif type(effect) is Arm:
                self._arm(effect.timer, effect.delay)
            elif type(effect) is Open:
                self._open(effect.link_id)
            elif type(effect) is Close:
                self._close()

    def _open(self, link_id: int) -> None:
        self._close()
        mailbox = self.mailbox()
        connector = self.endpoints.current  # the core moved it before asking to open

        def on_frame(frame: bytes) -> None:
            mailbox.tell(FrameIn(link_id, frame))

        if len(self.endpoints) == 1:
            self.link = connector(on_frame)  # as ever: heartbeat_timeout finds a lost one
        else:
            self.link = connector(on_frame, lambda: mailbox.tell(Dropped(link_id)))

    def _close(self) -> None:
        if self.link is not None:
            self.link.close()
            self.link = None

    def _arm(self, kind: TimerKind, delay: float) -> None:
        running = self._timers.pop(kind, None)
        if running is not None:
            running.cancel()
        mailbox = self.mailbox()
        message = BeatDue() if kind is TimerKind.BEAT else Connect()
        self._timers[kind] = self.clock.call_later(delay, lambda: mailbox.tell(message))
