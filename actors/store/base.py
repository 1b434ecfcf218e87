"""The store interface every implementation (memory, SQLite, later Postgres) provides.

Actors own the live Job objects; the store keeps a snapshot of each job's wire form, the
per-queue state counts and the unique-key index. Every method is thread-safe.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from actors.jobs import Job


class Store(Protocol):
    def add(self, jobs: list[Job]) -> list[dict[str, Any] | None]:
        """Insert new jobs atomically.

        Returns, position by position, None when the job was stored, or the wire form of the
        existing non-terminal job holding the same unique_key (a duplicate, not stored).
        """
        ...

    def save(self, job: Job) -> None:
        """Record the job's current state (before any reply about it leaves)."""
        ...

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The job's last saved wire form."""
        ...

    def counts(self) -> dict[str, dict[str, int]]:
        """queue -> state -> number of jobs."""
        ...

    def unfinished(self) -> Iterable[Job]:
        """Every non-terminal job, for a coordinator restarting over this store."""
        ...

    def close(self) -> None: ...
