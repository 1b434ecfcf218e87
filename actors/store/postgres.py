"""PostgresStore: jobs in a PostgreSQL database (`postgresql://user:pass@host:port/db`).

The same shape as SqliteStore, whose methods it inherits: reads are served by an in-memory
index (a MemoryStore) filled from the `jobs` table at open; writes update the index and hand
the job's row (its compact record, actors.store.record) to one writer thread, which commits
many requests per transaction (postgres_writer.PostgresWriter); replies wait in `after_commit`
until the commit holding their change returns. PostgreSQL's default `synchronous_commit=on`
makes a returned commit durable (WAL flushed).

One coordinator per database: the store holds a session-level advisory lock for as long as
its connection lives; the server drops it when the connection ends, even when the process
holding it was SIGKILLed. The schema is versioned in `schema_version`; MIGRATIONS[n - 1]
brings a database from version n - 1 to n, each in its own transaction, at open.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from actors.store.memory import COMPLETED_RETENTION_S, DISCARDED_RETENTION_S, MemoryStore
from actors.store.postgres_writer import PostgresWriter
from actors.store.sqlite import LOCK_ATTEMPTS, LOCK_RETRY_S, SqliteStore, StoreError

if TYPE_CHECKING:
    from actors.base import Activity

CONNECT_TIMEOUT_S = 5
LOCK_KEY = 0x636F7272616C  # "corral": the advisory lock one coordinator holds per database
LOAD_BATCH = 10_000  # rows fetched per round trip while loading
MIGRATIONS = (
    # 1: one row per job, the compact record in `wire`; ids are UUID7, ordered bytewise ("C")
    # so that loading in id order gives the jobs oldest first, as SQLite does.
    """
    CREATE TABLE jobs (
        id text COLLATE "C" PRIMARY KEY,
        queue text NOT NULL,
        state text NOT NULL,
        unique_key text,
        ended_at double precision,  -- completed_at of a terminal job: what retention goes by
        wire bytea NOT NULL         -- the job's record (actors.store.record)
    )
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class PostgresStore(SqliteStore):
    """Jobs in PostgreSQL; every change a reply announces is committed before it leaves."""

    def __init__(
        self,
        url: str,
        *,
        completed_retention_s: float = COMPLETED_RETENTION_S,
        discarded_retention_s: float = DISCARDED_RETENTION_S,
        activity: Activity | None = None,
    ) -> None:
        self.path = redacted(url)  # what messages and repr name: never the password
        self._index = MemoryStore(
            completed_retention_s=completed_retention_s,
            discarded_retention_s=discarded_retention_s,
        )
        self._lock = threading.Lock()
        self._lock_file = None  # the advisory lock lives and dies with the writer's connection
        connection = connect(url)
        try:
            migrate(connection, self.path)
            load(connection, self._index, self.path)
        except BaseException:
            connection.close()
            raise
        self._writer = PostgresWriter(
            connection, reconnect(url), f"store:{self.path}", activity
        )
        self._closed = False

    def __repr__(self) -> str:
        return f"PostgresStore({self.path!r})"


def redacted(url: str) -> str:
    """`url` with its password replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:***@" if parts.username else ":***@"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=user + host))


def reconnect(url: str) -> Callable[[], psycopg.Connection[Any]]:
    return lambda: connect(url)


def connect(url: str) -> psycopg.Connection[Any]:
    """An autocommit connection holding the store's lock; StoreError naming the database."""
    name = redacted(url)
    try:
        connection = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to the store {name}: {exc}".strip()) from exc
    try:
        for attempt in range(LOCK_ATTEMPTS):
            row = connection.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY]).fetchone()
            if row and row[0]:
                return connection
            if attempt + 1 < LOCK_ATTEMPTS:
                threading.Event().wait(LOCK_RETRY_S)
    except psycopg.Error as exc:
        _close_quietly(connection)
        raise StoreError(f"cannot lock the store {name}: {exc}") from exc
    _close_quietly(connection)
    raise StoreError(f"the store {name} is locked: another coordinator is using it")


def migrate(connection: psycopg.Connection[Any], name: str) -> None:
    """Bring the schema to SCHEMA_VERSION; refuse a database of a newer version."""
    try:
        connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        row = connection.execute("SELECT max(version) FROM schema_version").fetchone()
        version = row[0] if row and row[0] is not None else 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the store {name} has schema version {version}; this corral reads up to "
                f"{SCHEMA_VERSION} (written by a newer corral?)"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with connection.transaction():
                connection.execute(MIGRATIONS[target - 1])
                connection.execute("DELETE FROM schema_version")
                connection.execute("INSERT INTO schema_version VALUES (%s)", [target])
    except psycopg.Error as exc:
        raise StoreError(f"cannot prepare the store {name}: {exc}") from exc


def load(connection: psycopg.Connection[Any], index: MemoryStore, name: str) -> None:
    """Stream every job row into `index`, oldest first, through a server-side cursor."""
    try:
        with connection.transaction(), connection.cursor(name="corral_load") as cursor:
            cursor.itersize = LOAD_BATCH
            cursor.execute("SELECT wire FROM jobs ORDER BY id")
            index.load(bytes(blob) for (blob,) in cursor)
    except psycopg.Error as exc:
        raise StoreError(f"cannot read the store {name}: {exc}") from exc
    except (ValueError, TypeError, KeyError) as exc:  # RecordError is a ValueError
        raise StoreError(f"the store {name} holds an unreadable job row: {exc}") from exc


def _close_quietly(connection: psycopg.Connection[Any]) -> None:
    with contextlib.suppress(psycopg.Error):
        connection.close()
