"""A fixed pool of daemon threads for job handlers.

concurrent.futures' pool joins its threads at interpreter exit, so one handler that never
returns would keep a stopped worker process alive forever; a worker that has failed such a job
as `Shutdown` and deregistered must be able to exit.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Protocol

from actors.event_loop import CoroutineFactory, LoopThread

log = logging.getLogger(__name__)

Task = Callable[[], None]


class Wakeup(Protocol):
    """What a sleeping handler waits on (`JobContext.sleep`): a `threading.Event` here."""

    def set(self) -> None: ...

    def clear(self) -> None: ...

    def wait(self) -> bool: ...


class Executor(Protocol):
    """Where a worker runs its handlers: DaemonPool, or in a simulation the TurnExecutor of
    actors/turns.py, which runs one handler at a time in a deterministic order."""

    # False when `spawn` runs each coroutine on a loop of its own thread (a simulation's):
    # an async sleep there must block that thread, which gives the turn back (JobContext).
    shares_loop: bool

    def submit(self, task: Task) -> None: ...

    def spawn(self, factories: list[CoroutineFactory]) -> None:
        """Run async handlers' coroutines, each `factory()` as a task."""
        ...

    def shutdown(self) -> None: ...

    def event(self) -> Wakeup:
        """A new Wakeup, made on the handler's thread by its first sleep."""
        ...


class DaemonPool:
    """`size` daemon threads running submitted callables in order, and the node's event loop
    for coroutines (actors/event_loop.py); `shutdown` drops the rest."""

    shares_loop = True

    def __init__(self, size: int, name: str) -> None:
        self._tasks: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self._size = size
        self._closed = False
        self._loop = LoopThread(f"{name}-loop")
        for index in range(size):
            threading.Thread(target=self._work, name=f"{name}-{index}", daemon=True).start()

    def submit(self, task: Task) -> None:
        self._tasks.put(task)

    def spawn(self, factories: list[CoroutineFactory]) -> None:
        self._loop.spawn(factories)

    def event(self) -> threading.Event:
        return threading.Event()

    def shutdown(self) -> None:
        """Threads finish their current task and exit; queued tasks are never started."""
        for _ in range(self._size):
            self._tasks.put(None)
        self._closed = True
        self._loop.shutdown()

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None or self._closed:
                return
            try:
                task()
            except BaseException:  # a slot lost to one task would never serve another
                log.exception("a pooled task raised; its thread serves on")
