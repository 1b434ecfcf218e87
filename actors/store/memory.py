"""A store in process memory: fast, and gone with the process."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from actors import states
from actors.jobs import Job


class MemoryStore:
    """Wire snapshots in dicts, guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, dict[str, Any]] = {}
        self._where: dict[str, tuple[str, str]] = {}
        self._counts: dict[str, dict[str, int]] = defaultdict(
            lambda: dict.fromkeys(states.JOB_STATES, 0)
        )
        self._unique: dict[str, str] = {}

    def add(self, jobs: list[Job]) -> list[dict[str, Any] | None]:
        with self._lock:
            outcome: list[dict[str, Any] | None] = []
            for job in jobs:
                holder = self._unique.get(job.unique_key) if job.unique_key else None
                if holder is not None:
                    outcome.append(self._jobs[holder])
                    continue
                if job.unique_key:
                    self._unique[job.unique_key] = job.id
                self._put(job)
                outcome.append(None)
            return outcome

    def save(self, job: Job) -> None:
        with self._lock:
            self._put(job)
            if job.unique_key:
                holder = self._unique.get(job.unique_key)
                if job.state in states.TERMINAL_STATES:
                    if holder == job.id:
                        del self._unique[job.unique_key]
                elif holder is None:
                    self._unique[job.unique_key] = job.id  # a retried dead job takes it back

    def _put(self, job: Job) -> None:
        previous = self._where.get(job.id)
        if previous is not None:
            self._counts[previous[0]][previous[1]] -= 1
        self._counts[job.queue][job.state] += 1
        self._where[job.id] = (job.queue, job.state)
        self._jobs[job.id] = job.to_wire()

    def get(self, job_id: str) -> dict[str, Any] | None:
        return self._jobs.get(job_id)

    def unique_holder(self, unique_key: str) -> str | None:
        return self._unique.get(unique_key)

    def counts(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {queue: dict(by_state) for queue, by_state in self._counts.items()}

    def unfinished(self) -> Iterable[Job]:
        with self._lock:
            wires = [w for w in self._jobs.values() if w["state"] not in states.TERMINAL_STATES]
        return [Job.from_wire(w, seq) for seq, w in enumerate(wires)]

    def prune(self, now: float) -> int:
        return 0  # retention arrives with the durable-store work

    def after_commit(self, callback: Callable[[], None]) -> None:
        callback()  # nothing is ever pending in memory

    def close(self) -> None:
        pass
