"""The store interface every implementation (memory, SQLite, later Postgres) provides.

Actors own the live Job objects; the store keeps a snapshot of each job as last saved, the
per-queue state counts and the unique-key index. Every method is thread-safe. Snapshots are
kept compact (actors.store.record: ~100 bytes a job against ~1 KB as a dict, for a million
queued jobs); what `add`, `get` and `list` return is the wire form, a fresh dict per call.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from actors.jobs import Job
from actors.store import record


class Replay(NamedTuple):
    """What `add` returns, adding nothing, for jobs whose request id it already holds: the Job
    maps of the jobs that request made that the store still holds, in the order it made them."""

    jobs: list[dict[str, Any]]


class Entry(NamedTuple):
    """What the store holds per job: its record (actors.store.record), and the fields that
    counts and listings filter on, so that they unpack only the jobs they return. The request
    id (the string the request's jobs and the index share) is here so that forgetting a job
    can drop its key without unpacking the record."""

    queue: str
    state: str
    type: str
    blob: bytes
    request_id: str | None

    def job(self, seq: int) -> Job:
        """The job the record holds, with this queue sequence number."""
        return record.job(self.blob, seq)


class Store(Protocol):
    def add(self, jobs: list[Job]) -> list[dict[str, Any] | None] | Replay:
        """Insert new jobs atomically (the jobs of one request, sharing its `request_id`).

        Returns, position by position, None when the job was stored, or the wire form of the
        existing non-terminal job holding the same unique_key (a duplicate, not stored). When
        the jobs carry a request id that jobs still held were stored with, stores nothing and
        returns those jobs as a Replay: the check and the insert are one step under the lock.
        """
        ...

    def save(self, job: Job) -> None:
        """Record the job's current state (before any reply about it leaves)."""
        ...

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The job's last saved wire form (the Job map of PROTOCOL.md section 4)."""
        ...

    def unique_holder(self, unique_key: str) -> str | None:
        """The id of the non-terminal job holding this unique key, if any."""
        ...

    def counts(self) -> dict[str, dict[str, int]]:
        """queue -> state -> number of jobs."""
        ...

    def settings(self) -> dict[str, bytes]:
        """The coordinator's durable settings that are not jobs (a paused queue, ...): key ->
        value, as last put."""
        ...

    def put_setting(self, key: str, value: bytes | None) -> None:
        """Keep `value` under `key` (None: drop the key); durable like a job's save, so a reply
        about it goes through `after_commit`."""
        ...

    def unfinished(self) -> list[Entry]:
        """Every non-terminal job, oldest first, for a coordinator restarting over this store.
        Records, not Jobs: unpacking a million queued jobs takes seconds, which the queues
        spend after the coordinator serves (nodes.coordinator, mail.Restore)."""
        ...

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once every change saved so far is durable (at once if none is pending).

        Every reply the coordinator sends goes through here, so an acknowledged change is never
        lost, and many requests share one commit (group commit) instead of one fsync each.
        Callbacks run in the order they were given.
        """
        ...

    def prune(self, now: float) -> int:
        """Forget terminal jobs past their retention; returns how many. Must not block long:
        a durable store hands the deletion to its writer thread."""
        ...

    def delete(self, job_id: str) -> bool:
        """Forget an ended job (completed, discarded, cancelled) now, exactly as `prune` would
        at the end of its retention (extension "Delete"): its record, its counts, its request
        id (a resend of its enqueue makes a new job), its row on disk (through the writer, so a
        reply about it goes through `after_commit`), and on a shared database its place in a
        standby's copy. True when it was forgotten, False when no job has this id; BadRequest,
        changing nothing, when the job has not ended. The caller serialises it with the only
        other writer of an ended job, a manual retry (both run in the job's queue actor)."""
        ...

    def close(self) -> None: ...

    def made_by(self, request_id: str) -> builtins.list[dict[str, Any]]:
        """The Job maps of the jobs one request made that the store still holds, in the order
        it made them (a workflow's steps: its id is its request id)."""
        ...

    def list(
        self,
        queue: str | None = None,
        state: str | None = None,
        type: str | None = None,
        limit: int = 50,
    ) -> builtins.list[dict[str, Any]]:
        """Up to `limit` jobs (wire forms) matching every filter given, newest first.

        Serves the `jobs` request and the dashboard; it must not hold up the actors' saves
        for the length of a scan.
        """
        ...
