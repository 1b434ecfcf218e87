"""Slots: the worker's free capacity, counted in this one place.

`concurrency` less the jobs handed to the worker that have no outcome yet, less the abandoned
ones (cancelled, or not resumed after a reconnect) whose handler still holds its thread; none
unless the worker runs. The worker pushes its state and each abandoned handler's return; it
is never asked for a count.
"""

from __future__ import annotations

from collections.abc import Iterable

from actors import states


class Slots:
    """The jobs the worker holds, as the link handed them over, and its state."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.worker_state = states.RUNNING  # as the worker last pushed it (or a directive set)
        self.handed: dict[str, None] = {}  # handed to the worker with no outcome yet
        self.abandoned: dict[str, None] = {}  # told to abandon; the handler still runs

    def free(self) -> int:
        if self.worker_state != states.RUNNING:
            return 0
        return self.concurrency - len(self.handed) - len(self.abandoned)

    def hand(self, job_ids: Iterable[str]) -> None:
        self.handed.update(dict.fromkeys(job_ids))

    def finished(self, job_id: str) -> None:
        """An outcome came: the job no longer holds a slot, abandoned or not."""
        self.handed.pop(job_id, None)
        self.abandoned.pop(job_id, None)

    def abandon(self, job_ids: Iterable[str]) -> None:
        """The worker is told to drop these; each holds its slot until `released`."""
        for job_id in job_ids:
            if job_id in self.handed:
                del self.handed[job_id]
                self.abandoned[job_id] = None

    def keep_only(self, job_ids: frozenset[str]) -> None:
        """Registered again: the coordinator resumed `job_ids`; the rest are abandoned."""
        self.abandon([job_id for job_id in self.handed if job_id not in job_ids])

    def released(self, job_id: str) -> None:
        self.abandoned.pop(job_id, None)
