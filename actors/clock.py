"""The one source of time: SystemClock in production, ManualClock in simulation.

No other module reads the wall clock or sleeps; everything that waits on time asks a Clock for
a timer, so a 30 s heartbeat timeout is tested by `ManualClock.advance(31)` in microseconds.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

MANUAL_CLOCK_EPOCH_S = 1_700_000_000.0
MAX_TIMER_WAIT_S = 3600.0  # the timer thread wakes at least hourly; nothing fires early


class Timer:
    """A pending callback; `cancel()` is idempotent and thread-safe."""

    __slots__ = ("callback", "cancelled", "deadline")

    def __init__(self, deadline: float, callback: Callable[[], None]) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Clock(Protocol):
    """Wall-clock UNIX seconds plus one-shot timers."""

    def now(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer: ...


def _fire(timer: Timer) -> None:
    try:
        timer.callback()
    except Exception:
        log.exception("timer callback failed")


class SystemClock:
    """Real time; one daemon thread runs every timer in deadline order."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def now(self) -> float:
        return time.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(self.now() + max(0.0, delay), callback)
        with self._cond:
            heapq.heappush(self._heap, (timer.deadline, next(self._seq), timer))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="corral-clock", daemon=True)
                self._thread.start()
            # Only a new earliest deadline changes how long the thread sleeps. Most timers (a
            # parked fetch's 30 s, a get's wait) fall behind the reaper's next tick, and each
            # needless wake cost the idle round a context switch and a GIL hand-off.
            if self._heap[0][2] is timer:
                self._cond.notify()
        return timer

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > self.now():
                    delay = self._heap[0][0] - self.now() if self._heap else None
                    # capped: a far deadline (a client's `get` with wait=1e300) would overflow
                    # the lock's timeout and kill this thread, and with it every timer
                    self._cond.wait(None if delay is None else min(delay, MAX_TIMER_WAIT_S))
                _, _, timer = heapq.heappop(self._heap)
            if not timer.cancelled:
                _fire(timer)


class ManualClock:
    """Virtual time that moves only when a test advances it.

    `advance(dt)` fires due timers one at a time in deadline order, each with `now()` equal to
    its deadline, so the order of events is the same on every run.
    """

    def __init__(self, start: float = MANUAL_CLOCK_EPOCH_S) -> None:
        self._now = start
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        with self._lock:
            timer = Timer(self._now + max(0.0, delay), callback)
            heapq.heappush(self._heap, (timer.deadline, next(self._seq), timer))
        return timer

    def next_deadline(self) -> float | None:
        """The deadline of the earliest live timer, if any."""
        with self._lock:
            while self._heap and self._heap[0][2].cancelled:
                heapq.heappop(self._heap)
            return self._heap[0][0] if self._heap else None

    def fire_next(self, until: float) -> bool:
        """Fire the earliest timer due at or before `until`; False when there is none."""
        with self._lock:
            while self._heap and self._heap[0][2].cancelled:
                heapq.heappop(self._heap)
            if not self._heap or self._heap[0][0] > until:
                return False
            deadline, _, timer = heapq.heappop(self._heap)
            self._now = max(self._now, deadline)
        _fire(timer)
        return True

    def advance(self, seconds: float, between: Callable[[], None] | None = None) -> None:
        """Move time forward, firing due timers in order; `between` runs after each one."""
        until = self._now + seconds
        while self.fire_next(until):
            if between is not None:
                between()
        self._now = until
