"""Progress reports of running jobs, from their handlers to the next beat.

A handler calls `current_job().progress(fraction, message)` on its own thread or task; the
worker's link reads the latest report of each job it holds when it beats (PROTOCOL.md
extension "Progress"). A board shared by the two actors, rather than a message per report:
a handler in a tight loop may report thousands of times between two beats, and only the last
report of each job is worth a frame.
"""

from __future__ import annotations

import threading

from transport.validation.limits import MAX_PROGRESS_MESSAGE_CHARS

Report = tuple[float, str]  # fraction in [0, 1], message


class ProgressBoard:
    """The latest report of each running job of one worker node (thread-safe)."""

    def __init__(self) -> None:
        self._latest: dict[str, Report] = {}
        self._lock = threading.Lock()

    def report(self, job_id: str, fraction: float, message: str) -> None:
        with self._lock:
            self._latest[job_id] = (fraction, message[:MAX_PROGRESS_MESSAGE_CHARS])

    def forget(self, job_id: str) -> None:
        """The job left this worker (finished, cancelled, taken away)."""
        if self._latest:
            with self._lock:
                self._latest.pop(job_id, None)

    def snapshot(self) -> dict[str, Report]:
        with self._lock:
            return dict(self._latest)
