"""Observers hang off hooks: metrics, logs, waiters and dashboards subscribe to events here.

An observer that raises is logged and never breaks the job path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Observer = Callable[[str, dict[str, Any]], None]

# Event names, each with the payload keys it carries. `job` is the live `actors.jobs.Job` of
# the emitting actor: read it inside the observer (`job.to_wire()` for a copy), never keep or
# change it. Observers run on the thread running the emitting handler (often the socket's I/O
# thread: an idle actor handles a tell on its sender's thread), so they must be quick.
JOB_ENQUEUED = "job_enqueued"  # job
JOB_STARTED = "job_started"  # job: handed to a worker (state active, attempt and started_at set)
JOB_TERMINAL = "job_terminal"  # job: completed, discarded or cancelled
JOB_RETRY = "job_retry"  # job: a failed attempt, retried at job.next_attempt_at
JOB_RECOVERED = "job_recovered"  # job, reason: worker_lost | timeout
JOB_PROGRESS = "job_progress"  # job, fraction, message: a beat reported new progress
WORKER_JOINED = "worker_joined"  # worker_id, hostname, pid
WORKER_LOST = "worker_lost"  # worker_id, reason: timeout | deregistered | replaced
WORKER_DIRECTED = "worker_directed"  # worker_id, state
FETCH_ANSWERED = "fetch_answered"  # worker_id, jobs (how many), waited (s the fetch was parked)
# coordinator, role, previous, term, reason, endpoint: a coordinator sharing a database changed role
LEADERSHIP = "leadership"
QUEUE_PAUSED = "queue_paused"  # queue, paused: a queue was paused (True) or resumed (False)
EVENTS = (
    JOB_ENQUEUED,
    JOB_STARTED,
    JOB_TERMINAL,
    JOB_RETRY,
    JOB_RECOVERED,
    JOB_PROGRESS,
    WORKER_JOINED,
    WORKER_LOST,
    WORKER_DIRECTED,
    FETCH_ANSWERED,
    LEADERSHIP,
    QUEUE_PAUSED,
)


class EventHub:
    """Fan-out of named events to subscribers, in the emitting thread."""

    def __init__(self) -> None:
        self._observers: tuple[Observer, ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Add an observer; returns a function that removes it."""
        with self._lock:
            self._observers = (*self._observers, observer)

        def unsubscribe() -> None:
            with self._lock:
                self._observers = tuple(o for o in self._observers if o is not observer)

        return unsubscribe

    def emit(self, name: str, **payload: Any) -> None:
        for observer in self._observers:
            try:
                observer(name, payload)
            except Exception:
                log.exception("event observer failed on %s", name)
