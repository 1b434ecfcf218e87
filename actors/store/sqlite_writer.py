"""Group commit: one thread owns the SQLite connection and writes many requests per transaction.

Actors hand over snapshots and deletions without waiting; the writer takes everything pending
at once, writes it in one transaction, commits (one fsync), and only then runs the callbacks
registered before it took the batch — the replies that announce those changes. While it
commits, the next batch fills up, so the fsync cost is shared by every request that arrived
meanwhile instead of paid once per request.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import msgpack

from actors import states

log = logging.getLogger(__name__)

RETRY_AFTER_FAILURE_S = 1.0  # a failed commit (disk full, I/O error) is retried this often
UPSERT = (
    "INSERT OR REPLACE INTO jobs (id, queue, state, unique_key, ended_at, wire)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
DELETE = "DELETE FROM jobs WHERE id = ?"


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


class GroupCommitWriter:
    """The only user of `connection` once started. Every public method is thread-safe.

    `activity` (optional) is an `actors.base.Activity`: while anything is pending or being
    committed it counts as one unit of work, so a simulation run to quiescence waits for the
    commit and for the replies it releases.
    """

    def __init__(self, connection: sqlite3.Connection, name: str, activity: Any = None) -> None:
        self._connection = connection
        self._cond = threading.Condition()
        self._upserts: dict[str, dict[str, Any]] = {}  # latest snapshot per job id
        self._deletes: list[str] = []
        self._callbacks: list[Callable[[], None]] = []
        self._busy = False  # a taken batch is being written or its callbacks are running
        self._closing = False
        self._activity = activity
        self._counted = False
        self._wake = threading.Event()  # cuts the retry pause short on close
        self.commits = 0  # transactions committed: a measure of how well requests are grouped
        self._thread = threading.Thread(target=self._run, name=f"{name}-writer", daemon=True)
        self._thread.start()

    def track(self, activity: Any) -> None:
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
        if self._activity is not None and not self._counted:
            self._counted = True
            self._activity.begin()
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
                    if self._counted:
                        self._counted = False
                        self._activity.end()
                    self._cond.notify_all()

    def _commit(self, upserts: dict[str, dict[str, Any]], deletes: list[str]) -> bool:
        connection = self._connection
        try:
            with connection:  # one transaction: BEGIN ... COMMIT, or ROLLBACK on error
                connection.executemany(UPSERT, [row(wire) for wire in upserts.values()])
                connection.executemany(DELETE, [(job_id,) for job_id in deletes])
        except sqlite3.Error:
            log.exception(
                "store commit of %d jobs failed; replies wait, retrying in %.0f s",
                len(upserts) + len(deletes),
                RETRY_AFTER_FAILURE_S,
            )
            return False
        self.commits += 1
        return True
