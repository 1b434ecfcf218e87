"""PostgresLease: the lease of actors.store.lease in a PostgreSQL database's `corral_lease` row.

Each call is one statement in autocommit, so it is atomic on its own: `try_acquire` is an
`UPDATE ... WHERE expires_at <= clock_timestamp() RETURNING term`, and of several standbys
racing, the first to lock the row wins while the others, rechecking the row it committed,
find it unexpired and get nothing back. Times are the server's `clock_timestamp()` only.

Every call ends within CALL_BOUND_S even when the server is frozen or unreachable: the
connection is opened within CONNECT_TIMEOUT_S, the server cancels a statement or a lock wait
after STATEMENT_TIMEOUT_MS, TCP keepalives and `tcp_user_timeout` catch a dead peer, and since
a frozen server (SIGSTOP, a VM paused) still has its kernel acknowledge our packets, a watchdog
shuts the socket down when a statement outlives STATEMENT_BOUND_S. A failed call raises
StoreError and drops the connection; the next call opens a new one.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from typing import Any

import psycopg

from actors.store.lease import MEMBER_EXPIRY_S, LeaseView, Member
from actors.store.postgres import CONNECT_TIMEOUT_S, connect, migrate, redacted
from actors.store.sqlite import StoreError

STATEMENT_TIMEOUT_MS = 1000  # the server's own limit on a statement and on a lock wait
STATEMENT_BOUND_S = 1.5  # ours, for a server that cannot enforce its own (frozen)
CALL_BOUND_S = CONNECT_TIMEOUT_S + STATEMENT_BOUND_S  # the longest a call takes: choose ttl above
OPTIONS = f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={STATEMENT_TIMEOUT_MS}"

ACQUIRE = """
UPDATE corral_lease SET term = term + 1, holder = %s, endpoint = %s,
    expires_at = clock_timestamp() + make_interval(secs => %s)
WHERE expires_at <= clock_timestamp()
RETURNING term
"""
RENEW = """
UPDATE corral_lease SET expires_at = clock_timestamp() + make_interval(secs => %s)
WHERE term = %s AND holder = %s
RETURNING term
"""
RELEASE = """
UPDATE corral_lease SET expires_at = least(expires_at, clock_timestamp())
WHERE term = %s AND holder = %s
"""
HEARTBEAT = f"""
WITH gone AS (
    DELETE FROM corral_members
    WHERE seen_at < clock_timestamp() - interval '{MEMBER_EXPIRY_S} seconds' AND name <> %s
)
INSERT INTO corral_members (name, endpoint, role, seen_at)
VALUES (%s, %s, %s, clock_timestamp())
ON CONFLICT (name) DO UPDATE SET endpoint = excluded.endpoint, role = excluded.role,
    seen_at = excluded.seen_at
"""
READ = f"""
WITH now AS (SELECT clock_timestamp() AS t)
SELECT lease.term, lease.holder, lease.endpoint,
    extract(epoch FROM lease.expires_at - now.t)::float8,
    member.name, member.endpoint, member.role, extract(epoch FROM now.t - member.seen_at)::float8
FROM corral_lease AS lease CROSS JOIN now
LEFT JOIN corral_members AS member
    ON member.seen_at >= now.t - interval '{MEMBER_EXPIRY_S} seconds'
ORDER BY member.name
"""


class PostgresLease:
    """The Lease of actors.store.lease on a connection of its own; calls are serialised."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.path = redacted(url)
        self._lock = threading.Lock()
        self._connection: psycopg.Connection[Any] | None = None
        self._call("SELECT 1", [])  # connect and migrate now: a wrong URL fails at start

    def __repr__(self) -> str:
        return f"PostgresLease({self.path!r})"

    def try_acquire(self, name: str, endpoint: str, ttl: float) -> int | None:
        rows = self._call(ACQUIRE, [name, endpoint, ttl])
        return int(rows[0][0]) if rows else None

    def renew(self, name: str, term: int, ttl: float) -> bool:
        return bool(self._call(RENEW, [ttl, term, name]))

    def release(self, name: str, term: int) -> None:
        self._call(RELEASE, [term, name])

    def heartbeat(self, name: str, endpoint: str, role: str) -> None:
        self._call(HEARTBEAT, [name, name, endpoint, role])

    def read(self) -> LeaseView:
        rows = self._call(READ, [])
        term, holder, endpoint, expires_in = rows[0][:4]
        members = tuple(Member(*row[4:]) for row in rows if row[4] is not None)
        return LeaseView(int(term), holder, endpoint, float(expires_in), members)

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _call(self, sql: str, parameters: list[Any]) -> list[tuple[Any, ...]]:
        """Run one statement within CALL_BOUND_S and return its rows; StoreError on failure."""
        with self._lock:
            try:
                if self._connection is None:
                    self._connection = connect(self._url, options=OPTIONS)
                    migrate(self._connection, self.path)
                connection = self._connection
                cut = threading.Event()
                watchdog = threading.Timer(STATEMENT_BOUND_S, _cut, [connection, cut])
                watchdog.start()
                try:
                    cursor = connection.execute(sql, parameters)
                    return cursor.fetchall() if cursor.description else []
                finally:
                    watchdog.cancel()
                    watchdog.join()
                    if cut.is_set():  # even when the statement ended just in time
                        self._drop()
            except psycopg.Error as exc:
                self._drop()
                raise StoreError(f"the lease in the store {self.path} failed: {exc}") from exc
            except StoreError:
                self._drop()
                raise

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(psycopg.Error):
                self._connection.close()
            self._connection = None


def _cut(connection: psycopg.Connection[Any], cut: threading.Event) -> None:
    """Shut the connection's socket down, so that a call waiting on a frozen server fails at
    once (closing the connection from this thread would wait for the call's own lock)."""
    cut.set()
    with (
        contextlib.suppress(OSError, psycopg.Error),
        socket.socket(fileno=os.dup(connection.fileno())) as sock,
    ):
        sock.shutdown(socket.SHUT_RDWR)
