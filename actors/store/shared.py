"""The simulation's stand-in for a database several coordinators share: `MemoryDatabase` holds
a MemoryLease and the durable rows (job id -> record, actors.store.record), and `SharedStore`
is a store over it, opened by a coordinator under its lease term.

SharedStore is SqliteStore with another writer (SharedWriter): the same index, filled from the
rows at open, and the same add/save/prune; but each change lands in the rows at once, fenced
by the term as PostgreSQL's batches are (postgres_writer), and replies run at once. Fenced
out, the store calls `on_deposed` once and from then on drops every change and every reply.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from actors.store.follower import Changes, Follower
from actors.store.lease import MemoryLease
from actors.store.memory import COMPLETED_RETENTION_S, DISCARDED_RETENTION_S, MemoryStore
from actors.store.sqlite import SqliteStore, StoreError
from actors.store.sqlite_writer import Row

if TYPE_CHECKING:
    from actors.base import Activity
    from actors.clock import Clock

log = logging.getLogger(__name__)


class MemoryDatabase:
    """A lease and the job rows, shared by the coordinators of one simulation."""

    def __init__(self, clock: Clock) -> None:
        self.lease = MemoryLease(clock)
        self.rows: dict[str, bytes] = {}  # job id -> record; read under the lease's fence
        self.versions: dict[str, int] = {}  # job id -> the version its row was written at
        self.version = 0  # the last version drawn (PostgreSQL's `jobs_version` sequence)
        self.settings: dict[str, bytes] = {}  # the `corral_settings` table
        # The `jobs_deleted` table: job id -> (version, forget_at) of its tombstone
        self.tombstones: dict[str, tuple[int, float]] = {}

    def write(self, job_id: str, blob: bytes) -> None:
        """Put a row, at the next version (the lease held still by the caller)."""
        self.version += 1
        self.rows[job_id] = blob
        self.versions[job_id] = self.version

    def delete(self, job_id: str) -> None:
        self.rows.pop(job_id, None)
        self.versions.pop(job_id, None)

    def bury(self, job_id: str, forget_at: float) -> None:
        """Delete a row before its retention, leaving its tombstone at the next version."""
        self.delete(job_id)
        self.version += 1
        self.tombstones[job_id] = (self.version, forget_at)

    def unbury(self, now: float) -> None:
        """Drop the tombstones due by `now`."""
        for job_id in [i for i, (_, at) in self.tombstones.items() if at <= now]:
            del self.tombstones[job_id]


class MemoryFeed:
    """A MemoryDatabase's rows as a Follower reads them (actors.store.follower); every call
    fails with StoreError while `cut()` holds, as if the database could not be reached."""

    def __init__(self, db: MemoryDatabase, cut: Callable[[], bool] = lambda: False) -> None:
        self.db = db
        self.cut = cut
        self.name = "memory"

    def load(self, index: MemoryStore) -> int:
        self._reach()
        db = self.db
        with db.lease.fenced(0):  # held still: a consistent snapshot, as a database's is
            rows = [db.rows[job_id] for job_id in sorted(db.rows)]
            version = db.version
            settings = dict(db.settings)
        index.load(rows)
        index.load_settings(settings)
        return version

    def changes(self, since: int) -> Changes:
        self._reach()
        db = self.db
        with db.lease.fenced(0):
            changed = sorted((v, job_id) for job_id, v in db.versions.items() if v > since)
            deleted = sorted((v, i) for i, (v, _) in db.tombstones.items() if v > since)
            rows = [db.rows[job_id] for _, job_id in changed]
            return Changes(rows, [job_id for _, job_id in deleted], db.version)

    def existing(self, job_ids: list[str]) -> list[str]:
        self._reach()
        with self.db.lease.fenced(0):
            return [job_id for job_id in job_ids if job_id in self.db.rows]

    def settings(self) -> dict[str, bytes]:
        self._reach()
        with self.db.lease.fenced(0):
            return dict(self.db.settings)

    def close(self) -> None:
        """Nothing to close."""

    def _reach(self) -> None:
        if self.cut():
            raise StoreError("the database cannot be reached (simulated cut)")


class SharedWriter:
    """The writer of a SharedStore: each change lands in `db.rows` at once if `term` is
    current (GroupCommitWriter's interface, with no thread: a commit per change)."""

    def __init__(
        self, db: MemoryDatabase, term: int, on_deposed: Callable[[], None] | None
    ) -> None:
        self._db = db
        self.term = term
        self._on_deposed = on_deposed
        self._fenced = False
        self._lock = threading.Lock()  # one change lands at a time; fencing is told once
        self.commits = 0

    def track(self, activity: Activity) -> None:
        """Nothing to count: no change is ever pending."""

    def put(self, job_row: Row) -> None:
        self._land(lambda db: db.write(job_row[0], job_row[5]))

    def put_setting(self, key: str, value: bytes | None) -> None:
        def put(db: MemoryDatabase) -> None:
            if value is None:
                db.settings.pop(key, None)
            else:
                db.settings[key] = value

        self._land(put)

    def delete(self, job_ids: list[str]) -> None:
        def drop(db: MemoryDatabase) -> None:
            for job_id in job_ids:
                db.delete(job_id)

        self._land(drop)

    def erase(self, job_id: str, forget_at: float) -> None:
        self._land(lambda db: db.bury(job_id, forget_at))

    def drop_tombstones(self, now: float) -> None:
        """Drop the tombstones due by `now`, if any is (a reaper's round without one writes
        nothing, as PostgreSQL's writer adds nothing to its next batch)."""
        tombstones = self._db.tombstones
        if any(at <= now for _, at in list(tombstones.values())):
            self._land(lambda db: db.unbury(now))

    def _land(self, change: Callable[[MemoryDatabase], None]) -> None:
        with self._lock:
            if self._fenced:
                return
            with self._db.lease.fenced(self.term) as current:
                if current:
                    change(self._db)
                    self.commits += 1
                    return
            self._fenced = True
        log.error("deposed: term %d is over, another coordinator leads", self.term)
        if self._on_deposed is not None:
            self._on_deposed()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` at once (every change landed already), never once fenced out."""
        if not self._fenced:
            callback()

    def flush(self, timeout: float) -> bool:
        return not self._fenced

    def close(self, timeout: float) -> None:
        """Nothing to finish: every change landed (or was dropped) when it was made."""


class SharedStore(SqliteStore):
    """A store over a MemoryDatabase, opened under lease `term` (see the module docstring),
    from a standby's `follower` (caught up under `term`) or loaded anew."""

    def __init__(
        self,
        db: MemoryDatabase,
        *,
        term: int,
        on_deposed: Callable[[], None] | None = None,
        completed_retention_s: float = COMPLETED_RETENTION_S,
        discarded_retention_s: float = DISCARDED_RETENTION_S,
        activity: Activity | None = None,
        follower: Follower | None = None,
    ) -> None:
        self.path = f"shared:{id(db):x}"
        if follower is None:  # a cold start: load every job now
            index = MemoryStore(
                completed_retention_s=completed_retention_s,
                discarded_retention_s=discarded_retention_s,
            )
            follower = Follower(MemoryFeed(db), index)
        self._index, leftover = follower.take()
        self._lock = threading.Lock()
        self._lock_file = None
        self._writer = SharedWriter(db, term, on_deposed)  # type: ignore[assignment]
        if leftover:
            self._writer.delete(leftover)
        self._closed = False

    def __repr__(self) -> str:
        return f"SharedStore({self.path!r})"
