"""PostgresStore: jobs in a PostgreSQL database (`postgresql://user:pass@host:port/db`).

The same shape as SqliteStore, whose methods it inherits: reads are served by an in-memory
index (a MemoryStore) filled from the `jobs` table at open; writes update the index and hand
the job's row (its compact record, actors.store.record) to one writer thread, which commits
many requests per transaction (postgres_writer.PostgresWriter); replies wait in `after_commit`
until the commit holding their change returns. PostgreSQL's default `synchronous_commit=on`
makes a returned commit durable (WAL flushed).

Several coordinators may share a database; one leads at a time, by the lease of
actors.store.lease (its row is `corral_lease`, see postgres_lease.PostgresLease). A store is
opened by the leader under its lease term, and every batch it commits is fenced by that term
(postgres_writer): once another coordinator took the lease, nothing of the old term lands, and
the store calls `on_deposed` once. The schema is versioned in `schema_version`;
MIGRATIONS[n - 1] brings a database from version n - 1 to n, at open, under a transaction-scoped
advisory lock so that coordinators starting together migrate once.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from actors.store.follower import Changes, Follower
from actors.store.memory import COMPLETED_RETENTION_S, DISCARDED_RETENTION_S, MemoryStore
from actors.store.postgres_writer import PostgresWriter
from actors.store.sqlite import SqliteStore, StoreError

if TYPE_CHECKING:
    from actors.base import Activity

CONNECT_TIMEOUT_S = 2  # libpq's least (psycopg enforces it too)
# A dead server or a cut network ends a call within seconds, not at the kernel's TCP timeout
# (minutes): idle connections are probed every second, and data unacknowledged for 3 s fails.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 1,
    "keepalives_interval": 1,
    "keepalives_count": 3,
    "tcp_user_timeout": 3000,
}
MIGRATION_LOCK_KEY = 0x636F7272616C  # "corral": held by the transaction that migrates
LOAD_BATCH = 50_000  # rows fetched per round trip while loading (~6 MB)
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
    # 2: the lease (one row; see actors.store.lease) and the coordinators sharing the database.
    # `term` is UNIQUE so that it is a key: a takeover, which changes it, locks the row FOR
    # UPDATE and waits for a batch holding FOR KEY SHARE (postgres_writer.BATCH), while a
    # renewal, which changes only `expires_at`, waits for no batch. 'epoch' rather than
    # '-infinity': it subtracts from now() into a finite interval.
    """
    CREATE TABLE corral_lease (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        term bigint NOT NULL UNIQUE,
        holder text,
        endpoint text,
        expires_at timestamptz NOT NULL
    );
    INSERT INTO corral_lease (term, expires_at) VALUES (0, 'epoch');
    CREATE TABLE corral_members (
        name text PRIMARY KEY,
        endpoint text NOT NULL,
        role text NOT NULL,
        seen_at timestamptz NOT NULL
    )
    """,
    # 3: records may carry the enqueue's request id (actors/store/record.py), which a corral
    # reading version 2 would take for a damaged row: it now refuses the database instead.
    "SELECT 1",
    # 4: each row's version, drawn from one sequence as it is written, so that a standby reads
    # only the rows written since its last read (actors.store.follower). Not indexed: an index
    # would make every update of a job a non-HOT update; a standby scans instead.
    """
    CREATE SEQUENCE jobs_version;
    ALTER TABLE jobs ADD COLUMN version bigint NOT NULL DEFAULT 0
    """,
    # 5: the coordinator's settings that are not jobs (a paused queue, ...), written by the
    # fenced batch like the jobs.
    "CREATE TABLE corral_settings (key text PRIMARY KEY, value bytea NOT NULL)",
    # 6: records may end with the job's limit (actors/store/record.py), which an older corral
    # would take for a damaged row: it refuses the database instead.
    "SELECT 1",
    # 7: records may end with the job's flow (the jobs it waits for), likewise.
    "SELECT 1",
    # 8: records may end with the job's deadlines (its expires_at and run_timeout), likewise.
    "SELECT 1",
    # 9: tombstones of jobs deleted before their retention (extension "Delete"), each at the
    # next `jobs_version`, so that a standby's copy reads the deletions written since with the
    # rows (postgres_writer). Indexed by version (each catch-up reads those above the last one
    # it read) and by forget_at (a batch drops those due).
    """
    CREATE TABLE jobs_deleted (
        id text COLLATE "C" PRIMARY KEY,
        forget_at double precision NOT NULL,
        version bigint NOT NULL
    );
    CREATE INDEX jobs_deleted_version ON jobs_deleted (version);
    CREATE INDEX jobs_deleted_forget_at ON jobs_deleted (forget_at)
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class PostgresStore(SqliteStore):
    """Jobs in PostgreSQL; every change a reply announces is committed before it leaves.

    `term` is the lease term the opening coordinator holds: every batch lands only while it is
    the current term. Fenced out, the store logs it once, calls `on_deposed` once from its
    writer thread (it must not block), drops every pending and later change and never runs
    the replies waiting on them.

    A standby hands over the `follower` it kept current (caught up under `term`); without
    one, the store loads every job from the database.
    """

    def __init__(
        self,
        url: str,
        *,
        term: int,
        on_deposed: Callable[[], None] | None = None,
        completed_retention_s: float = COMPLETED_RETENTION_S,
        discarded_retention_s: float = DISCARDED_RETENTION_S,
        activity: Activity | None = None,
        follower: Follower | None = None,
    ) -> None:
        self.path = redacted(url)  # what messages and repr name: never the password
        if follower is None:  # a cold start: load every job now
            index = MemoryStore(
                completed_retention_s=completed_retention_s,
                discarded_retention_s=discarded_retention_s,
            )
            follower = Follower(PostgresFeed(url), index)
        assert isinstance(follower.feed, PostgresFeed)
        connection = follower.feed.connection
        self._index, leftover = follower.take()
        self._lock = threading.Lock()
        self._lock_file = None  # no lock file: the lease decides who writes
        self._writer = PostgresWriter(
            connection, reconnect(url), f"store:{self.path}", term, on_deposed, activity
        )
        if leftover:
            self._writer.delete(leftover)
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


def connect(url: str, **options: Any) -> psycopg.Connection[Any]:
    """An autocommit connection with KEEPALIVES (and `options`); StoreError naming the
    database."""
    try:
        return psycopg.connect(
            url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, **KEEPALIVES, **options
        )
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to the store {redacted(url)}: {exc}".strip()) from exc


def migrate(connection: psycopg.Connection[Any], name: str) -> None:
    """Bring the schema to SCHEMA_VERSION; refuse a database of a newer version."""
    try:
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATION_LOCK_KEY])
            connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)"
            )
            row = connection.execute("SELECT max(version) FROM schema_version").fetchone()
            version = row[0] if row and row[0] is not None else 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the store {name} has schema version {version}; this corral reads up to "
                    f"{SCHEMA_VERSION} (written by a newer corral?)"
                )
            if version < SCHEMA_VERSION:
                for target in range(version + 1, SCHEMA_VERSION + 1):
                    connection.execute(MIGRATIONS[target - 1])
                connection.execute("DELETE FROM schema_version")
                connection.execute("INSERT INTO schema_version VALUES (%s)", [SCHEMA_VERSION])
    except psycopg.Error as exc:
        raise StoreError(f"cannot prepare the store {name}: {exc}") from exc


class PostgresFeed:
    """The `jobs` table as a Follower reads it, on a connection of its own (which the store
    taking the follower over writes on). The schema is migrated when the feed connects."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = redacted(url)
        self.connection = connect(url)
        try:
            migrate(self.connection, self.name)
        except BaseException:
            self.connection.close()
            raise

    def load(self, index: MemoryStore) -> int:
        """Stream every row into `index`, oldest first, through a server-side cursor. In
        binary, bytea comes as bytes with no unescaping; with record.read_row not unpacking
        each record, a million queued jobs load in ~4 s (bench/pg_store.py)."""
        highest = 0

        def blobs(cursor: psycopg.ServerCursor[Any]) -> Iterator[bytes]:
            nonlocal highest
            while rows := cursor.fetchmany(LOAD_BATCH):
                for blob, version in rows:
                    highest = max(highest, version)
                    yield blob

        with (
            self._reading("read"),
            self.connection.transaction(),
            self.connection.cursor(name="corral_load", binary=True) as cursor,
        ):
            cursor.execute("SELECT wire, version FROM jobs ORDER BY id")
            index.load(blobs(cursor))
        index.load_settings(self.settings())
        return highest

    def settings(self) -> dict[str, bytes]:
        with self._reading("read"):
            return dict(self._open().execute(SETTINGS, binary=True).fetchall())

    def changes(self, since: int) -> Changes:
        with self._reading("follow"):  # one statement: the rows and tombstones of one snapshot
            found = self._open().execute(CHANGES, [since, since], binary=True).fetchall()
        rows = [blob for blob, _, _ in found if blob is not None]
        deleted = [job_id for _, job_id, _ in found if job_id is not None]
        return Changes(rows, deleted, found[-1][2] if found else since)

    def existing(self, job_ids: list[str]) -> list[str]:
        with self._reading("follow"):
            rows = self._open().execute(EXISTING, [job_ids]).fetchall()
        return [job_id for (job_id,) in rows]

    def close(self) -> None:
        self.connection.close()

    def _open(self) -> psycopg.Connection[Any]:
        """The connection, reopened if the last call lost it (the copy stays valid: versions
        are the database's)."""
        if self.connection.closed or self.connection.broken:
            self.connection = connect(self.url)
        return self.connection

    @contextlib.contextmanager
    def _reading(self, what: str) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            raise StoreError(f"cannot {what} the store {self.name}: {exc}") from exc
        except (ValueError, TypeError, KeyError) as exc:  # RecordError is a ValueError
            raise StoreError(f"the store {self.name} holds an unreadable job row: {exc}") from exc


CHANGES = """
SELECT wire, NULL::text, version FROM jobs WHERE version > %s
UNION ALL SELECT NULL::bytea, id, version FROM jobs_deleted WHERE version > %s
ORDER BY 3
"""
EXISTING = "SELECT id FROM jobs WHERE id = ANY(%s)"
SETTINGS = "SELECT key, value FROM corral_settings"
