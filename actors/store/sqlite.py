"""SqliteStore: the embedded durable store (one SQLite file in WAL mode).

Reads (get, counts, unique keys, unfinished) are served by an in-memory index, the same
MemoryStore the simulation uses, filled from the file at open. Writes update that index at once
and hand the job's row, with the record the index packed (actors.store.record), to one writer
thread (`sqlite_writer.GroupCommitWriter`), which commits many requests per transaction; replies
wait in `after_commit` until their changes are on disk. Actors therefore never touch the disk:
`save` costs one pack, a dict update and a lock.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from actors.jobs import Job
from actors.store import sqlite_writer
from actors.store.base import Entry, Replay
from actors.store.memory import COMPLETED_RETENTION_S, DISCARDED_RETENTION_S, MemoryStore
from actors.store.sqlite_writer import GroupCommitWriter
from transport.errors import CorralError

if TYPE_CHECKING:
    from actors.base import Activity

# 2: `wire` holds a record (actors.store.record); version 1 rows hold the Job map, and are
# still read. 3: a record may end with the enqueue's request id; version 2 records are still
# read. 4: the `settings` table (a paused queue, ...). 5: a record may end with the job's
# limit (its concurrency key and own limits). 6: a record may end with the job's flow (the
# jobs it waits for). 7: a record may end with the job's deadlines (its expires_at and
# run_timeout); version 6 records, without them, are still read. An older corral refuses a
# file of a newer version at open.
SCHEMA_VERSION = 7
BUSY_TIMEOUT_S = 0.5  # SQLite's own wait on a locked file, behind our lock file
LOCK_ATTEMPTS = 10  # one every LOCK_RETRY_S: a coordinator still stopping gets half a second
LOCK_RETRY_S = 0.05
CLOSE_TIMEOUT_S = 10.0
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024  # the WAL is truncated back to this after checkpoints
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    state TEXT NOT NULL,
    unique_key TEXT,
    ended_at REAL,          -- completed_at of a terminal job: what retention goes by
    wire BLOB NOT NULL      -- the job's record (actors.store.record); a Job map in version 1
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID
"""
# WITHOUT ROWID: one B-tree keyed by id instead of a rowid table plus an index on id, so each
# snapshot rewrites one tree: ~20% less writer CPU per job and a 17% smaller file, measured with
# the bench's write pattern when rows (~450 bytes, schema version 1) exceeded the 1/20-page size
# SQLite advises; records made them ~3x smaller.


class StoreError(CorralError):
    """The store cannot be opened or written (not a wire code); the message names the file."""

    code = "store_unavailable"


class SqliteStore:
    """Jobs in a SQLite file; every change a reply announces is committed before it leaves.

    Durability: WAL with `synchronous=FULL`, so each commit fsyncs the WAL. With NORMAL a
    commit survives a killed process but not a power cut or kernel crash, and a reply about
    it may already have left. Group commit shares one fsync among every request that arrived
    during the previous one, so FULL is cheap: in the end-to-end bench NORMAL saved ~10 us of
    coordinator CPU per job (145 vs 155 us) and no measurable jobs/s.

    Only one process may open a file: a second coordinator gets a StoreError at once instead
    of two writers corrupting each other's view (the lock is `<path>.lock`, released by the
    kernel when the holder dies, even by SIGKILL).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        completed_retention_s: float = COMPLETED_RETENTION_S,
        discarded_retention_s: float = DISCARDED_RETENTION_S,
        activity: Activity | None = None,
    ) -> None:
        self.path = str(path)
        self._index = MemoryStore(
            completed_retention_s=completed_retention_s,
            discarded_retention_s=discarded_retention_s,
        )
        self._lock = threading.Lock()
        self._lock_file = _take_lock(self.path)
        try:
            connection = _open(self.path, self._index)
        except BaseException:
            _release(self._lock_file)
            raise
        self._writer = GroupCommitWriter(connection, f"store:{Path(self.path).name}", activity)
        self._closed = False

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    @property
    def commits(self) -> int:
        """Transactions committed so far (many requests share one: group commit)."""
        return self._writer.commits

    def track(self, activity: Activity) -> None:
        """Count pending commits as activity (simulation), so running to quiescence also
        waits for the commit and for the replies it releases."""
        self._writer.track(activity)

    def add(self, jobs: list[Job]) -> list[dict[str, Any] | None] | Replay:
        with self._lock:
            outcome = self._index.add(jobs)
            if isinstance(outcome, Replay):
                return outcome  # nothing new to write
            for job, duplicate in zip(jobs, outcome, strict=True):
                if duplicate is None:
                    self._writer.put(self._row(job))
            return outcome

    def save(self, job: Job) -> None:
        with self._lock:
            self._index.save(job)
            self._writer.put(self._row(job))

    def _row(self, job: Job) -> sqlite_writer.Row:
        """The job's row, with the record the index packed as it saved the job."""
        blob = self._index.packed(job.id)
        assert blob is not None, job.id
        return sqlite_writer.row(job, blob)

    def get(self, job_id: str) -> dict[str, Any] | None:
        return self._index.get(job_id)

    def settings(self) -> dict[str, bytes]:
        return self._index.settings()

    def put_setting(self, key: str, value: bytes | None) -> None:
        with self._lock:
            self._index.put_setting(key, value)
            self._writer.put_setting(key, value)

    def unique_holder(self, unique_key: str) -> str | None:
        return self._index.unique_holder(unique_key)

    def counts(self) -> dict[str, dict[str, int]]:
        return self._index.counts()

    def list(
        self,
        queue: str | None = None,
        state: str | None = None,
        type: str | None = None,  # the job type: the Store protocol's name for it
        limit: int = 50,
    ) -> builtins.list[dict[str, Any]]:
        return self._index.list(queue, state, type, limit)

    def unfinished(self) -> list[Entry]:
        return self._index.unfinished()

    def made_by(self, request_id: str) -> builtins.list[dict[str, Any]]:
        return self._index.made_by(request_id)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._writer.after_commit(callback)

    def prune(self, now: float) -> int:
        """Forget expired terminal jobs now; the writer deletes their rows with its next batch
        (and the tombstones of deleted jobs due by `now`, on a shared database)."""
        with self._lock:
            gone = self._index.expire(now)
            if gone:
                self._writer.delete(gone)
            self._writer.drop_tombstones(now)
        return len(gone)

    def delete(self, job_id: str) -> bool:
        """Forget an ended job now (MemoryStore.remove: BadRequest if it has not ended); the
        writer deletes its row with its next batch, leaving a tombstone on a shared database
        for a standby's copy to read (postgres_writer)."""
        with self._lock:
            forget_at = self._index.remove(job_id)
            if forget_at is None:
                return False
            self._writer.erase(job_id, forget_at)
        return True

    def flush(self, timeout: float = CLOSE_TIMEOUT_S) -> bool:
        """Wait until every change so far is committed; False if `timeout` ran out."""
        return self._writer.flush(timeout)

    def close(self) -> None:
        """Commit what is pending, close the file and release the lock. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._writer.close(CLOSE_TIMEOUT_S)
        _release(self._lock_file)


def _take_lock(path: str) -> IO[str] | None:
    """Hold `<path>.lock` exclusively for as long as the store is open."""
    if path == ":memory:":
        return None
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        problem = "is not a directory" if parent.exists() else "does not exist"
        raise StoreError(f"cannot open the store {path}: {parent} {problem}")
    try:
        lock_file = open(f"{path}.lock", "a")  # noqa: SIM115 - held until close()
    except OSError as exc:
        raise StoreError(f"cannot open the store {path}: {exc.strerror} ({exc.filename})") from exc
    for attempt in range(LOCK_ATTEMPTS):
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock_file
        except BlockingIOError:
            if attempt + 1 < LOCK_ATTEMPTS:
                threading.Event().wait(LOCK_RETRY_S)
    lock_file.close()
    raise StoreError(
        f"the store {path} is locked: another coordinator is using it ({path}.lock is held)"
    )


def _release(lock_file: IO[str] | None) -> None:
    if lock_file is not None:
        lock_file.close()  # closing the descriptor drops the flock


def _open(path: str, index: MemoryStore) -> sqlite3.Connection:
    """Connect, check, create the schema and load every job into `index`; StoreError naming
    the file. Rows stream from the cursor into the index, never all decoded at once."""
    connection: sqlite3.Connection | None = None
    try:
        connection = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None
        )  # autocommit: the writer opens its transactions itself
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal" and path != ":memory:":
            raise StoreError(f"the store {path} cannot use WAL mode (journal_mode is {mode})")
        connection.execute("PRAGMA synchronous=FULL")  # why FULL: see SqliteStore
        connection.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
        check = connection.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise sqlite3.DatabaseError(f"quick_check: {check}")
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the store {path} has schema version {version}; this corral reads up to "
                f"{SCHEMA_VERSION} (written by a newer corral?)"
            )
        connection.executescript(SCHEMA)
        # Ids are UUID7 (time-ordered): the index gets the jobs oldest first, as when enqueued.
        index.load(blob for (blob,) in connection.execute("SELECT wire FROM jobs ORDER BY id"))
        index.load_settings(dict(connection.execute("SELECT key, value FROM settings")))
        # Only once every row was read: a refused file keeps its version for the corral that
        # wrote it.
        connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except StoreError:
        _close_quietly(connection)
        raise
    except sqlite3.Error as exc:
        _close_quietly(connection)
        raise StoreError(_explain(path, exc)) from exc
    except (ValueError, TypeError, KeyError) as exc:  # RecordError is a ValueError
        _close_quietly(connection)
        raise StoreError(f"the store {path} holds an unreadable job row: {exc}") from exc
    return connection


def _explain(path: str, exc: sqlite3.Error) -> str:
    text = str(exc)
    lowered = text.lower()
    if any(word in lowered for word in ("not a database", "malformed", "corrupt", "quick_check")):
        return (
            f"the store {path} is corrupt or not a SQLite database ({text}); "
            "move it aside to start empty, or restore a backup"
        )
    if "locked" in lowered or "busy" in lowered:
        return f"the store {path} is locked by another process ({text})"
    if any(word in lowered for word in ("readonly", "read-only", "unable to open", "i/o")):
        return f"cannot write the store {path} ({text}): check the file and directory permissions"
    return f"cannot open the store {path}: {text}"


def _close_quietly(connection: sqlite3.Connection | None) -> None:
    if connection is not None:
        with contextlib.suppress(sqlite3.Error):
            connection.close()
