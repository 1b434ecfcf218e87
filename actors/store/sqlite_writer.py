"""Group commit: one thread owns the SQLite connection and writes many requests per transaction.

Actors hand over ready rows and deletions without waiting; the writer takes everything pending
at once, writes it in one transaction and commits (one fsync). Per job the last change handed
over wins: a row saved after its job was deleted (a client naming a deleted job's id again)
lands, and a deletion after a save deletes. A callback (a reply) waits for
the commit that holds every change handed over before it was given, and callbacks run in the
order they were given. While one batch commits the next fills up, so the fsync is shared by
every request that arrived meanwhile instead of paid once per request.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from actors.base import Activity
    from actors.jobs import Job

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_AFTER_FAILURE_S = 1.0  # a failed commit (disk full, I/O error) is retried this often
UPSERT = "INSERT OR REPLACE INTO jobs (id, queue, state, unique_key, ended_at, wire) VALUES "
DELETE = "DELETE FROM jobs WHERE id IN "
PUT_SETTING = "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)"
DROP_SETTING = "DELETE FROM settings WHERE key = ?"
# Few statements per batch, because each statement is one sqlite3_step, which drops the GIL and
# must win it back from the busy actor threads (up to the 5 ms switch interval each time).
# With `executemany` (one step per row) a row cost ~30 us of writer time in the end-to-end bench
# against ~5 us alone, and SQLite ran at ~52% of the memory store's rate; with one multi-row
# statement per batch a row costs ~7 us. The statement runs in autocommit mode, so the same step
# also commits. 4,096 rows x 6 parameters stays below SQLite's default limit of 32,766.
MAX_ROWS_PER_STATEMENT = 4096
# A `jobs` row, in the order of UPSERT's columns.
Row = tuple[str, str, str, str | None, float | None, bytes]
Settings = dict[str, bytes | None]  # pending settings: key -> value, None to drop the key
# Pending tombstones (extension "Delete"): job id -> when a standby's copy would forget the job
# by its retention anyway, after which the tombstone may go (postgres_writer).
Tombstones = dict[str, float]


class Fenced(Exception):
    """A commit refused for good: another writer owns the store now (a PostgreSQL store whose
    lease term is over). The message says so; the writer stops writing."""


def row(job: Job, blob: bytes) -> Row:
    """The `jobs` row of `job`, whose record (actors.store.record) is `blob`: built by the
    saving actor, so the writer thread only binds ready values. `ended_at` is set only for
    terminal jobs."""
    ended = job.completed_at if job.terminal else None
    return (job.id, job.queue, job.state, job.unique_key, ended, blob)


@functools.cache
def upsert_sql(rows: int) -> str:
    return UPSERT + ", ".join(["(?, ?, ?, ?, ?, ?)"] * rows)


@functools.cache
def delete_sql(rows: int) -> str:
    return DELETE + "(" + ", ".join("?" * rows) + ")"


def chunks(items: list[T]) -> Iterator[list[T]]:
    """`items` in statements of MAX_ROWS_PER_STATEMENT, the last one padded to a power of two
    by repeating its last item: one statement for any usual batch, yet few distinct statements
    (all kept in the connection's statement cache). A repeated row rewrites the same row with
    the same values, and a repeated id in `IN (...)` changes nothing."""
    for start in range(0, len(items), MAX_ROWS_PER_STATEMENT):
        chunk = items[start : start + MAX_ROWS_PER_STATEMENT]
        size = 1 << (len(chunk) - 1).bit_length()
        yield chunk + [chunk[-1]] * (size - len(chunk))


class GroupCommitWriter:
    """The only user of `connection` once started. Every public method is thread-safe.

    Changes are numbered as they are handed over; `_committed` is the number covered by the
    last commit. A callback given after change n runs once `_committed >= n` and every earlier
    callback ran: right after the commit holding its change, not the one after.

    With an `activity` (simulation), while anything is pending or being committed it counts
    as one unit of work, so a simulation run to quiescence waits for the commit and for the
    replies it releases.

    Fenced out (a `_commit` raised Fenced), the writer logs it once, calls `on_fenced` once
    from its thread, and stops: every pending and later change is dropped and no waiting or
    later callback ever runs, since the change it would announce never landed.
    """

    keeps_tombstones = False  # SQLite: no standby follows the file, a deletion is only a delete

    def __init__(
        self,
        connection: sqlite3.Connection,
        name: str,
        activity: Activity | None = None,
        on_fenced: Callable[[], None] | None = None,
    ) -> None:
        self._connection = connection
        self._cond = threading.Condition()
        self._upserts: dict[str, Row] = {}  # latest row per job id
        self._deletes: dict[str, None] = {}  # job ids, never one of `_upserts`
        self._tombstones: Tombstones = {}
        self._tombstone_cutoff: float | None = None  # tombstones due by then may go
        self._settings: Settings = {}  # latest value per key (None: drop it)
        self._changes = 0  # changes handed over so far
        self._committed = 0  # changes durable so far
        self._callbacks: deque[tuple[int, Callable[[], None]]] = deque()  # (changes needed, cb)
        self._busy = False  # the writer holds a taken batch or callbacks it is running
        self._closing = False
        self._fenced = False
        self._on_fenced = on_fenced
        self._activity = activity
        self._counted: Activity | None = None  # the activity our pending work was counted in
        self._wake = threading.Event()  # cuts the retry pause short on close
        self.commits = 0  # transactions committed: a measure of how well requests are grouped
        self._thread = threading.Thread(target=self._run, name=f"{name}-writer", daemon=True)
        self._thread.start()

    def track(self, activity: Activity) -> None:
        with self._cond:
            self._activity = activity

    def put(self, job_row: Row) -> None:
        """Persist this row (replacing any pending older one of the same job)."""
        with self._cond:
            if self._fenced:
                return
            self._deletes.pop(job_row[0], None)
            self._upserts[job_row[0]] = job_row
            self._changes += 1
            self._pending()

    def delete(self, job_ids: list[str]) -> None:
        """Delete these rows (pruned: a standby's copy forgets them by the same rule)."""
        with self._cond:
            if self._fenced:
                return
            for job_id in job_ids:
                self._upserts.pop(job_id, None)
                self._deletes[job_id] = None
            self._changes += 1
            self._pending()

    def erase(self, job_id: str, forget_at: float) -> None:
        """Delete this row before its retention (extension "Delete"). A writer that
        `keeps_tombstones` also leaves a tombstone, kept until `forget_at`, so that a standby's
        copy forgets the job too (actors.store.follower)."""
        with self._cond:
            if self._fenced:
                return
            self._upserts.pop(job_id, None)
            self._deletes[job_id] = None
            if self.keeps_tombstones:
                self._tombstones[job_id] = forget_at
            self._changes += 1
            self._pending()

    def drop_tombstones(self, now: float) -> None:
        """Tombstones due by `now` may go, with the next batch (not a change of its own: a
        tombstone kept longer costs a row, and a standby reads only newer ones)."""
        if not self.keeps_tombstones:
            return
        with self._cond:
            cutoff = self._tombstone_cutoff
            self._tombstone_cutoff = now if cutoff is None else max(cutoff, now)

    def put_setting(self, key: str, value: bytes | None) -> None:
        """Persist a setting (None: drop it), replacing any pending value of the key."""
        with self._cond:
            if self._fenced:
                return
            self._settings[key] = value
            self._changes += 1
            self._pending()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once every change handed over so far is committed, in call order:
        at once in the caller when that is already so and no earlier callback is waiting.
        Never, once fenced out."""
        with self._cond:
            if self._fenced:
                return
            if self._changes > self._committed or self._callbacks or self._busy:
                self._callbacks.append((self._changes, callback))
                self._pending()
                return
        callback()

    def _pending(self) -> None:
        if self._activity is not None and self._counted is None:
            self._counted = self._activity
            self._counted.begin()
        self._cond.notify_all()  # notify() might wake a flush() waiter instead of the writer

    def _idle(self) -> bool:
        return not (self._busy or self._changed() or self._callbacks)

    def _changed(self) -> bool:
        return bool(self._upserts or self._deletes or self._settings or self._tombstones)

    def _work(self) -> bool:
        ready = bool(self._callbacks) and self._callbacks[0][0] <= self._committed
        return self._closing or self._changed() or ready

    def flush(self, timeout: float) -> bool:
        """Wait until everything handed over is committed and its callbacks ran; False when
        `timeout` ran out or the writer was fenced out (what was pending never landed)."""
        with self._cond:
            return self._cond.wait_for(self._idle, timeout) and not self._fenced

    def close(self, timeout: float) -> None:
        """Commit what is pending, stop the thread and close the connection."""
        self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._wake.set()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._connection.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(self._work)
                if self._closing:
                    return
                upserts, deletes, covered = self._upserts, self._deletes, self._changes
                settings, tombstones = self._settings, self._tombstones
                cutoff = self._tombstone_cutoff
                self._upserts, self._deletes, self._settings = {}, {}, {}
                self._tombstones, self._tombstone_cutoff = {}, None
                self._busy = True
            try:
                changed = upserts or deletes or settings
                committed = not changed or self._commit(
                    upserts, list(deletes), settings, tombstones, cutoff
                )
            except Fenced as fenced:
                self._stop_fenced(fenced)
                return
            with self._cond:
                if not committed:  # put the batch back in front of what arrived meanwhile
                    self._put_back(upserts, deletes, settings, tombstones, cutoff)
                else:
                    self._committed = max(self._committed, covered)
                ready = []
                while self._callbacks and self._callbacks[0][0] <= self._committed:
                    ready.append(self._callbacks.popleft()[1])
            for callback in ready:
                try:
                    callback()
                except Exception:
                    log.exception("after-commit callback failed")
            with self._cond:
                self._busy = False
                if self._idle():
                    if self._counted is not None:
                        self._counted.end()
                        self._counted = None
                    self._cond.notify_all()
            if not committed:
                self._wake.wait(RETRY_AFTER_FAILURE_S)

    def _put_back(
        self,
        upserts: dict[str, Row],
        deletes: dict[str, None],
        settings: Settings,
        tombstones: Tombstones,
        cutoff: float | None,
    ) -> None:
        """A batch that failed goes back in front of the changes handed over since, which win
        per job: a newer save of a job the batch deleted, or a newer deletion of a job it saved
        (lock held)."""
        newer_upserts, newer_deletes = self._upserts, self._deletes
        self._upserts = {i: r for i, r in upserts.items() if i not in newer_deletes} | newer_upserts
        self._deletes = {i: None for i in deletes if i not in newer_upserts} | newer_deletes
        self._settings = settings | self._settings
        self._tombstones = tombstones | self._tombstones
        if self._tombstone_cutoff is None:
            self._tombstone_cutoff = cutoff

    def _stop_fenced(self, fenced: Fenced) -> None:
        """Drop everything pending and every waiting callback, for good; tell the owner once."""
        log.error("%s", fenced)
        with self._cond:
            self._fenced = True
            self._upserts, self._deletes, self._settings = {}, {}, {}
            self._tombstones, self._tombstone_cutoff = {}, None
            self._callbacks.clear()
            self._busy = False
            if self._counted is not None:
                self._counted.end()
                self._counted = None
            self._cond.notify_all()
        if self._on_fenced is not None:
            try:
                self._on_fenced()
            except Exception:
                log.exception("on_fenced callback failed")

    def _commit(
        self,
        upserts: dict[str, Row],
        deletes: list[str],
        settings: Settings,
        tombstones: Tombstones,
        cutoff: float | None,
    ) -> bool:
        """Write and commit one batch atomically; False (rolled back, logged) on failure.
        SQLite keeps no tombstones: `tombstones` is always empty and `cutoff` None."""
        statements: list[tuple[str, list[Any]]] = [
            (upsert_sql(len(rows)), [value for r in rows for value in r])
            for rows in chunks(list(upserts.values()))
        ]
        statements += [(delete_sql(len(job_ids)), job_ids) for job_ids in chunks(deletes)]
        statements += [
            (DROP_SETTING, [key]) if value is None else (PUT_SETTING, [key, value])
            for key, value in settings.items()
        ]
        connection = self._connection
        try:
            if len(statements) == 1:  # autocommit: one statement is one transaction
                connection.execute(*statements[0])
            else:
                connection.execute("BEGIN")
                for sql, parameters in statements:
                    connection.execute(sql, parameters)
                connection.execute("COMMIT")
        except sqlite3.Error:
            log.exception(
                "store commit of %d jobs failed; replies wait, retrying in %.0f s",
                len(upserts) + len(deletes),
                RETRY_AFTER_FAILURE_S,
            )
            if connection.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
            return False
        self.commits += 1
        return True
