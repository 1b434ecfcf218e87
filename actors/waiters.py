"""Parked `get` requests (`get` with `wait`): answered when their job ends or the wait runs out."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from actors import events, states
from actors.clock import Clock, Timer
from actors.store.base import Store
from transport import codec
from transport.messages import Rid

Outbox = Callable[[bytes, bytes], None]


class JobWaiters:
    """Thread-safe: terminal-job events arrive from any actor, timers from the clock."""

    def __init__(self, clock: Clock, store: Store, outbox: Outbox, hub: events.EventHub) -> None:
        self._clock = clock
        self._store = store
        self._outbox = outbox
        self._lock = threading.Lock()
        self._waiting: dict[str, list[tuple[bytes, Rid, Timer]]] = defaultdict(list)
        hub.subscribe(self._on_event)

    def wait(self, job_id: str, peer: bytes, rid: Rid, seconds: float) -> None:
        """Answer with the job once it is terminal, or as it is after `seconds`."""
        entry: list[tuple[bytes, Rid, Timer]] = []

        def expire() -> None:
            with self._lock:
                waiting = self._waiting.get(job_id, [])
                if entry and entry[0] in waiting:
                    waiting.remove(entry[0])
                    if not waiting:
                        del self._waiting[job_id]
                else:
                    return
            self._answer(job_id, peer, rid)

        with self._lock:
            entry.append((peer, rid, self._clock.call_later(seconds, expire)))
            self._waiting[job_id].append(entry[0])
        stored = self._store.get(job_id)  # it may have ended before we were registered
        if stored is None or stored["state"] in states.TERMINAL_STATES:  # None: ended, deleted
            self._release(job_id)

    def _on_event(self, name: str, payload: dict[str, Any]) -> None:
        if name == events.JOB_TERMINAL and payload["job"].id in self._waiting:
            self._release(payload["job"].id)

    def _release(self, job_id: str) -> None:
        with self._lock:
            waiting = self._waiting.pop(job_id, [])
        for peer, rid, timer in waiting:
            timer.cancel()
            self._answer(job_id, peer, rid)

    def _answer(self, job_id: str, peer: bytes, rid: Rid) -> None:
        """The job as stored; `unknown_job` if it is gone (it ended and was deleted or pruned
        between the dispatcher's look and ours, or while the wait ran)."""
        stored = self._store.get(job_id)
        if stored is None:
            self._outbox(peer, codec.error("unknown_job", f"no job {job_id}", rid))
        else:
            self._outbox(peer, codec.reply(rid, job=stored))
