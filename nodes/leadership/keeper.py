"""LeaseKeeper: the thread that runs a coordinator's leadership (actors/leadership.py).

Lease calls block on the database (briefly, and bounded by the lease's own timeouts), so they
run here and never on an actor or on the socket's I/O thread. Every event, whoever raises it
(the clock's timer, a promotion thread, the store's writer when fenced out), goes through one
queue and is handled on this thread in order. A promotion (loading the store) runs on a thread
of its own, so the lease keeps being renewed while a large store loads.

With an `activity` (simulation) each queued event and each running promotion counts as work,
so a simulation run to quiescence also waits for leadership changes to finish.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Protocol

from actors.base import Activity, Untracked
from actors.clock import Clock, Timer
from actors.leadership import (
    Dismantle,
    Effect,
    Event,
    Leadership,
    Poll,
    Promote,
    Release,
    Renew,
    Role,
    Schedule,
    Serve,
    StepDown,
)
from actors.store.lease import LOADING, STANDBY, Lease, LeaseView
from transport.errors import CorralError

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 30.0
SETTLING = frozenset({Event.NOT_ACQUIRED, Event.LEASE_ERROR, Event.PROMOTED,
                      Event.PROMOTE_FAILED, Event.STOP})  # fmt: skip


class Host(Protocol):
    """What the keeper asks of its coordinator (nodes/leadership/ha.py)."""

    def promote(self, term: int) -> None:
        """Open the store under `term` and start the actors (blocking; raises on failure)."""
        ...

    def serve(self, term: int) -> None: ...

    def ready(self) -> bool:
        """Whether a promotion now would be quick (a standby's copy of the jobs is loaded)."""
        ...

    def step_down(self, term: int, reason: str) -> None: ...

    def dismantle(self, term: int) -> None: ...

    def changed(self, before: Role, after: Role, term: int, reason: str) -> None: ...


class LeaseKeeper:
    """Runs one Leadership core against a Lease for one coordinator."""

    def __init__(
        self,
        lease: Lease,
        host: Host,
        *,
        name: str,
        endpoint: str,
        ttl: float,
        clock: Clock,
        activity: Activity | None = None,
    ) -> None:
        self.lease = lease
        self.host = host
        self.name = name
        self.endpoint = endpoint
        self.clock = clock
        self.core = Leadership(ttl)
        self.view: LeaseView | None = None  # the lease as last read: leader, term, members
        self.view_read_at = 0.0  # local time of that read (its expires_in counts from there)
        self._activity = activity or Untracked()
        self._events: queue.SimpleQueue[tuple[Event, dict[str, object]]] = queue.SimpleQueue()
        self._timer: Timer | None = None
        self._release = True  # False: stop as a killed process would, keeping the lease
        self._trouble: str | None = None  # the last lease failure logged, until a call works
        # Set once the first poll has been answered and, if it took the lease, the promotion
        # ended: a coordinator that starts alone serves as soon as start() returns.
        self.settled = threading.Event()
        self._promotions: set[threading.Thread] = set()
        self._thread = threading.Thread(target=self._run, name=f"lease-{name}", daemon=True)

    def start(self) -> LeaseKeeper:
        self.post(Event.TICK)
        self._thread.start()
        return self

    def serving(self, now: float) -> bool:
        return self.core.serving(now)

    def leader(self, now: float) -> LeaseView | None:
        """The lease as last read, if it had not lapsed by `now` (as far as we can tell)."""
        view = self.view
        if view is None or view.holder is None or now >= self.view_read_at + view.expires_in:
            return None
        return view

    def post(self, event: Event, **data: object) -> None:
        """Queue an event for the keeper's thread (any thread; never blocks)."""
        self._activity.begin()
        self._events.put((event, data))

    def stop(self, timeout: float = STOP_TIMEOUT_S, *, release: bool = True) -> None:
        """Step down (releasing the lease so a standby takes over at once, unless `release`
        is False) and end the thread."""
        self._release = release
        if self._thread.is_alive():
            self.post(Event.STOP)
            self._thread.join(timeout)
        if self._timer is not None:
            self._timer.cancel()

    def _run(self) -> None:
        while True:
            event, data = self._events.get()
            try:
                self._apply(event, **data)
            except Exception:
                log.exception("leadership: handling %s failed", event.value)
            finally:
                self._activity.end()
            if self.core.role is Role.STOPPED and not self._promotions and self._events.empty():
                self.lease.close()
                return

    def _apply(self, event: Event, **data: object) -> None:
        changes = len(self.core.changes)
        effects = self.core.handle(event, self.clock.now(), **data)
        if event in SETTLING:
            self.settled.set()
        for before, after, term, reason in self.core.changes[changes:]:
            self.host.changed(before, after, term, reason)
        for effect in effects:
            self._perform(effect)

    def _perform(self, effect: Effect) -> None:
        if isinstance(effect, Schedule):
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.clock.call_later(effect.delay, lambda: self.post(Event.TICK))
        elif isinstance(effect, Poll):
            self._poll()
        elif isinstance(effect, Renew):
            self._renew(effect.term)
        elif isinstance(effect, Promote):
            self._promote(effect.term)
        elif isinstance(effect, Serve):
            self.host.serve(effect.term)
        elif isinstance(effect, StepDown):
            self.host.step_down(effect.term, effect.reason)
        elif isinstance(effect, Dismantle):
            self.host.dismantle(effect.term)
        elif isinstance(effect, Release) and self._release:
            self._quietly(lambda: self.lease.release(self.name, effect.term))

    def _poll(self) -> None:
        sent = self.clock.now()
        try:
            role = STANDBY if self.host.ready() else LOADING
            self.lease.heartbeat(self.name, self.endpoint, role)
            term = self.lease.try_acquire(self.name, self.endpoint, self.core.ttl)
            if term is None:
                self.view, self.view_read_at = self.lease.read(), sent
        except CorralError as exc:
            self._unreachable(exc)
            return
        self._reachable()
        if term is not None:
            self._apply(Event.ACQUIRED, term=term, sent=sent)
        else:
            assert self.view is not None
            self._apply(Event.NOT_ACQUIRED, leader=self.view.endpoint)

    def _renew(self, term: int) -> None:
        sent = self.clock.now()
        try:
            renewed = self.lease.renew(self.name, term, self.core.ttl)
            if renewed:
                self.lease.heartbeat(self.name, self.endpoint, "leader")
                self.view, self.view_read_at = self.lease.read(), sent
        except CorralError as exc:
            self._unreachable(exc)
            return
        self._reachable()
        self._apply(Event.RENEWED if renewed else Event.REFUSED, term=term, sent=sent)

    def _unreachable(self, exc: CorralError) -> None:
        """A lease call failed: said once per distinct reason (a standby polls five times per
        failover_timeout), then handed to the rules."""
        if exc.message != self._trouble:
            log.warning("leadership: %s; retrying", exc.message)
            self._trouble = exc.message
        self._apply(Event.LEASE_ERROR, reason=exc.message)

    def _reachable(self) -> None:
        if self._trouble is not None:
            log.info("leadership: the lease is reachable again")
            self._trouble = None

    def _promote(self, term: int) -> None:
        """Load the store of `term` on a thread of its own; report back through the queue."""

        def run() -> None:
            outcome: dict[str, object] = {"term": term}
            try:
                self.host.promote(term)
                event = Event.PROMOTED
            except Exception as exc:
                log.exception("leadership: promotion to term %d failed", term)
                event, outcome["reason"] = Event.PROMOTE_FAILED, str(exc)
            self._promotions.discard(thread)  # before the post: the keeper may then end
            self.post(event, **outcome)
            self._activity.end()

        thread = threading.Thread(target=run, name=f"promote-{self.name}-{term}", daemon=True)
        self._promotions.add(thread)
        self._activity.begin()
        thread.start()

    def _quietly(self, call: Callable[[], None]) -> None:
        try:
            call()
        except CorralError as exc:
            log.warning("leadership: %s", exc.message)
