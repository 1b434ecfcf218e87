"""What a running handler sees of its job: `current_job()`, a cancellable sleep, progress.

A sync handler runs on a pool thread and an `async def` one as a task on the worker node's
event loop (actors/event_loop.py); `current_job()` works in both, since each run sets the
context variable in its own thread or task.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from actors.base import Activity
from actors.clock import Clock
from actors.pool import Wakeup
from actors.progress import ProgressBoard
from actors.tracing import TRACEPARENT


@dataclass(slots=True)
class JobContext:
    """What a running handler can know about its job, and a cancellable sleep.

    Built once per job on the worker's hot path, so it holds a flag and a plain lock; the
    Event a sleep waits on (~2 us to build) is made by the first `sleep()`, by `new_event`
    (the executor's: a simulation's passes the turn on while its handler sleeps).
    """

    id: str
    type: str
    attempt: int
    job: dict[str, Any]
    clock: Clock
    activity: Activity
    new_event: Callable[[], Wakeup]
    board: ProgressBoard
    _cancelled: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _wake_event: Wakeup | None = None
    _sleeping: bool = False
    # An async handler's task and the loop it runs on, once it started (`bind_task`); and
    # whether that loop is the node's shared one (else a simulation's private loop per handler,
    # on a thread that holds the turn: an `asleep` there blocks that thread instead).
    _task: asyncio.Task[Any] | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _shared_loop: bool = True

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled or taken away; the handler should stop early."""
        return self._cancelled

    @property
    def meta(self) -> dict[str, Any]:
        """The job's `meta` map as enqueued."""
        return self.job.get("meta") or {}

    @property
    def traceparent(self) -> str | None:
        """The W3C trace context the job was enqueued in (docs/TRACING.md), if any."""
        value = self.meta.get(TRACEPARENT)
        return value if isinstance(value, str) else None

    def progress(self, fraction: float, message: str = "") -> None:
        """Report how far the job is (0.0 to 1.0) with a short message; the next beat carries
        it to the coordinator, where `get`, `corral get`, `corral status` and the dashboard
        show it. Raises ValueError for a fraction outside [0, 1]."""
        if isinstance(fraction, bool) or not isinstance(fraction, int | float):
            raise TypeError("progress fraction must be a number")
        if not (0.0 <= fraction <= 1.0) or math.isnan(fraction):
            raise ValueError(f"progress fraction must be within [0, 1], not {fraction}")
        self.board.report(self.id, float(fraction), str(message))

    def cancel(self) -> None:
        self._cancelled = True
        self._wake()
        with self._lock:
            task, loop = self._task, self._loop
        if task is not None and loop is not None:
            with contextlib.suppress(RuntimeError):  # its loop has closed: nothing to cancel
                loop.call_soon_threadsafe(task.cancel)

    def bind_task(self, task: asyncio.Task[Any], shared_loop: bool) -> None:
        """The async handler's task started (on its loop's thread): a cancel now cancels it.
        Raises CancelledError at once if the job was cancelled before it started."""
        with self._lock:
            self._task, self._loop = task, task.get_loop()
            self._shared_loop = shared_loop
        if self._cancelled:
            raise asyncio.CancelledError

    def sleep(self, seconds: float) -> bool:
        """Wait `seconds` on the node's clock; returns False at once if the job is cancelled.

        While asleep the handler does not count as busy, so a simulation moves virtual time on;
        whoever wakes it (the timer or a cancel) hands the busy count back first. An `async
        def` handler awaits `asleep` instead: this would stop the node's loop, and every other
        async handler with it, so it raises RuntimeError there.
        """
        if self._task is not None and self._shared_loop:
            raise RuntimeError("an async handler waits with `await current_job().asleep(s)`")
        with self._lock:
            if self._cancelled:
                return False
            if self._wake_event is None:
                self._wake_event = self.new_event()
            wake = self._wake_event
            wake.clear()
            self._sleeping = True
            timer = self.clock.call_later(seconds, self._wake)
            self.activity.end()
        wake.wait()
        timer.cancel()
        return not self._cancelled

    async def asleep(self, seconds: float) -> None:
        """`sleep` for `async def` handlers: waits on the node's clock without blocking the
        loop, so virtual time drives it in a simulation too. A cancel of the job cancels the
        awaiting task (CancelledError), as it would any other await."""
        if self._cancelled:
            raise asyncio.CancelledError
        if not self._shared_loop:
            self.sleep(seconds)  # a private loop on a turn thread: give the turn back
            if self._cancelled:
                raise asyncio.CancelledError
            return
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, woken)

        timer = self.clock.call_later(seconds, wake)
        try:
            await woken
        finally:
            timer.cancel()

    def _wake(self) -> None:
        with self._lock:
            if self._sleeping and self._wake_event is not None:
                self._sleeping = False
                self.activity.begin()
                self._wake_event.set()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "corral_job", default=None
)


def current_job() -> JobContext | None:
    """The job the calling handler is running, or None outside a handler."""
    return _current.get()


def enter(context: JobContext) -> contextvars.Token[JobContext | None]:
    """Make `context` the current job of this thread or task (the worker's runners call it)."""
    return _current.set(context)


def leave(token: contextvars.Token[JobContext | None]) -> None:
    _current.reset(token)
