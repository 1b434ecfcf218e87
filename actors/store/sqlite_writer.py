"""Group commit: one thread owns the SQLite connection and writes many requests per transaction.

Actors hand over snapshots and deletions without waiting; the writer takes everything pending
at once, writes it in one transaction, commits (one fsync), and only then runs the callbacks
registered before it took the batch — the replies that announce those changes. While it
commits, the next batch fills up, so the fsync cost is shared by every request that arrived
meanwhile instead of paid once per request.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import msgpack

from actors import states

if TYPE_CHECKING:
    from actors.base import Activity

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_AFTER_FAILURE_S = 1.0  # a failed commit (disk full, I/O error) is retried this often
UPSERT = "INSERT OR REPLACE INTO jobs (id, queue, state, unique_key, ended_at, wire) VALUES "
DELETE = "DELETE FROM jobs WHERE id IN "
# Many rows per statement, because each statement is one sqlite3_step, which drops the GIL and
# must win it back from the busy actor threads: with `executemany` (one step per row) a row cost
# ~30 us of writer time in the end-to-end bench (~5 us alone) and SQLite ran at ~52% of the
# memory store's rate; one statement per batch brought it to ~7 us and ~72%. 256 rows x 6
# parameters stays far below SQLite's limit of 32,766 parameters per statement.
MAX_ROWS_PER_STATEMENT = 256


def row(wire: dict[str, Any]) -> tuple[Any, ...]:
    """The `jobs` row for a wire snapshot; `ended_at` is set only for terminal jobs."""
    ended = wire.get("completed_at") if wire["state"] in states.TERMINAL_STATES else None
    return (
        wire["id"],
        wire["queue"],
        wire["state"],
        wire.get("unique_key"),
        ended,
        msgpack.packb(wire, use_bin_type=True),
    )


@functools.cache
def upsert_sql(rows: int) -> str:
    return UPSERT + ", ".join(["(?, ?, ?, ?, ?, ?)"] * rows)


@functools.cache
def delete_sql(rows: int) -> str:
    return DELETE + "(" + ", ".join("?" * rows) + ")"


def chunks(items: list[T]) -> Iterator[list[T]]:
    """`items` in chunks whose sizes are powers of two up to MAX_ROWS_PER_STATEMENT: few
    distinct statements, all kept in the connection's statement cache."""
    start = 0
    while start < len(items):
        size = min(MAX_ROWS_PER_STATEMENT, 1 << ((len(items) - start).bit_length() - 1))
        yield items[start : start + size]
        start += size


class GroupCommitWriter:
    """The only user of `connection` once started. Every public method is thread-safe.

    With an `activity` (simulation), while anything is pending or being
    committed it counts as one unit of work, so a simulation run to quiescence waits for the
    commit and for the replies it releases.
    """

    def __init__(
        self, connection: sqlite3.Connection, name: str, activity: Activity | None = None
    ) -> None:
        self._connection = connection
        self._cond = threading.Condition()
        self._upserts: dict[str, dict[str, Any]] = {}  # latest snapshot per job id
        self._deletes: list[str] = []
        self._callbacks: list[Callable[[], None]] = []
        self._busy = False  # a taken batch is being written or its callbacks are running
        self._closing = False
        self._activity = activity
        self._counted: Activity | None = None  # the activity our pending work was counted in
        self._wake = threading.Event()  # cuts the retry pause short on close
        self.commits = 0  # transactions committed: a measure of how well requests are grouped
        self._thread = threading.Thread(target=self._run, name=f"{name}-writer", daemon=True)
        self._thread.start()

    def track(self, activity: Activity) -> None:
        with self._cond:
            self._activity = activity

    def put(self, wire: dict[str, Any]) -> None:
        """Persist this snapshot (replacing any pending older one of the same job)."""
        with self._cond:
            self._upserts[wire["id"]] = wire
            self._pending()

    def delete(self, job_ids: list[str]) -> None:
        with self._cond:
            self._deletes.extend(job_ids)
            self._pending()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once every change handed over so far is committed, in call order."""
        with self._cond:
            idle = not (self._busy or self._upserts or self._deletes or self._callbacks)
            if not idle:
                self._callbacks.append(callback)
                self._pending()
                return
        callback()

    def _pending(self) -> None:
        if self._activity is not None and self._counted is None:
            self._counted = self._activity
            self._counted.begin()
        self._cond.notify_all()  # notify() might wake a flush() waiter instead of the writer

    def flush(self, timeout: float) -> bool:
        """Wait until everything handed over is committed and its callbacks ran."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not (self._busy or self._upserts or self._deletes or self._callbacks),
                timeout,
            )

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
                self._cond.wait_for(
                    lambda: self._closing or self._upserts or self._deletes or self._callbacks
                )
                if self._closing:
                    return
                upserts, deletes, callbacks = self._upserts, self._deletes, self._callbacks
                self._upserts, self._deletes, self._callbacks = {}, [], []
                self._busy = True
            if (upserts or deletes) and not self._commit(upserts, deletes):
                with self._cond:  # put the batch back in front of what arrived meanwhile
                    self._upserts = upserts | self._upserts
                    self._deletes = deletes + self._deletes
                    self._callbacks = callbacks + self._callbacks
                    self._busy = False
                self._wake.wait(RETRY_AFTER_FAILURE_S)
                continue
            for callback in callbacks:
                try:
                    callback()
                except Exception:
                    log.exception("after-commit callback failed")
            with self._cond:
                self._busy = False
                if not (self._upserts or self._deletes or self._callbacks):
                    if self._counted is not None:
                        self._counted.end()
                        self._counted = None
                    self._cond.notify_all()

    def _commit(self, upserts: dict[str, dict[str, Any]], deletes: list[str]) -> bool:
        connection = self._connection
        try:
            with connection:  # one transaction: BEGIN ... COMMIT, or ROLLBACK on error
                for rows in chunks([row(wire) for wire in upserts.values()]):
                    connection.execute(upsert_sql(len(rows)), [v for r in rows for v in r])
                for job_ids in chunks(deletes):
                    connection.execute(delete_sql(len(job_ids)), job_ids)
        except sqlite3.Error:
            log.exception(
                "store commit of %d jobs failed; replies wait, retrying in %.0f s",
                len(upserts) + len(deletes),
                RETRY_AFTER_FAILURE_S,
            )
            return False
        self.commits += 1
        return True
