"""The worker node's event loop for `async def` handlers, on a daemon thread of its own.

One loop per node, not one per job: a thousand awaiting handlers cost a thousand tasks, not
a thousand threads or loops. It starts with the first async job, so a node with only sync
handlers never has one; like DaemonPool's threads it is a daemon, so a handler that never
returns cannot keep a stopped worker process alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

CoroutineFactory = Callable[[], Coroutine[Any, Any, None]]
STOP_GRACE_S = 1.0  # how long cancelled tasks get to unwind once the loop is stopped


class LoopThread:
    """An asyncio loop running forever on its own thread, started on first use."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def spawn(self, factories: list[CoroutineFactory]) -> None:
        """Run each `factory()` as a task on the loop (from any thread): one wakeup of the
        loop for the whole batch a fetch brought."""
        loop = self._running_loop()
        if loop is not None:
            loop.call_soon_threadsafe(_start, loop, factories)

    def shutdown(self) -> None:
        """Stop the loop; tasks still running are cancelled and given STOP_GRACE_S to unwind."""
        with self._lock:
            self._stopped = True
            loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed in between
                loop.call_soon_threadsafe(loop.stop)

    def _running_loop(self) -> asyncio.AbstractEventLoop | None:
        with self._lock:
            if self._stopped:
                return None
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(
                    target=self._run, args=(self._loop,), name=self._name, daemon=True
                ).start()
            return self._loop

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=STOP_GRACE_S))
        finally:
            loop.close()


def _start(loop: asyncio.AbstractEventLoop, factories: list[CoroutineFactory]) -> None:
    for factory in factories:
        loop.create_task(factory()).add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("an async handler's runner raised", exc_info=task.exception())
