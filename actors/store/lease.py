"""Leadership among coordinators sharing one database: a lease with a term.

One lease exists per database. A coordinator takes it only when it lapsed (or was never held),
and each taking starts a new term (the old term + 1); the holder renews it before it lapses.
Every write a leader makes is fenced by its term (actors.store.postgres_writer,
actors.store.shared): once another coordinator took term + 1, no write of the old term lands.
Expiry is measured by one clock only, the database's (or, in memory, the injected Clock), never
by comparing two machines' clocks.

Coordinators also keep a member row each (`heartbeat`), so that any of them can show who shares
the database, in which role, and how long ago each was seen.

`MemoryLease` is the lease of `actors.store.shared.MemoryDatabase`, shared by the coordinators
of a simulation or a test; `actors.store.postgres_lease.PostgresLease` is the real one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from actors.clock import Clock

MEMBER_EXPIRY_S = 60.0  # a member unseen this long is dropped from the member rows
LEADER, STANDBY = "leader", "standby"
LOADING = "loading"  # a standby still loading its copy of the jobs: a takeover would be slower


@dataclass(frozen=True)
class Member:
    """A coordinator that shares the database."""

    name: str
    endpoint: str
    role: str  # LEADER | STANDBY | LOADING
    seen_ago: float  # seconds since it last wrote its heartbeat, by the database's clock


@dataclass(frozen=True)
class LeaseView:
    """The lease and the members as the database sees them now."""

    term: int  # 0 when nobody ever led
    holder: str | None  # the coordinator holding it (None when never held)
    endpoint: str | None  # the endpoint the holder advertised
    expires_in: float  # seconds until it lapses, by the database's clock (<= 0: lapsed)
    members: tuple[Member, ...]


class Lease(Protocol):
    def try_acquire(self, name: str, endpoint: str, ttl: float) -> int | None:
        """Take the lease if it lapsed (or was never held): the new term (old term + 1),
        or None when another coordinator holds an unexpired lease."""
        ...

    def renew(self, name: str, term: int, ttl: float) -> bool:
        """Extend our lease to db-now + ttl; False when `term` is no longer the current one."""
        ...

    def release(self, name: str, term: int) -> None:
        """Graceful step-down: make our lease lapse now (a standby takes over at its next poll)."""
        ...

    def heartbeat(self, name: str, endpoint: str, role: str) -> None:
        """Upsert this coordinator's member row (seen now); members unseen for 60 s are dropped."""
        ...

    def read(self) -> LeaseView: ...

    def close(self) -> None: ...


class MemoryLease:
    """A Lease kept in memory, timed by the injected clock; thread-safe.

    One instance stands for the database's lease row: the coordinators of a simulation share
    it, and the shared store's commits hold it still with `fenced` while they land.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._term = 0
        self._holder: str | None = None
        self._endpoint: str | None = None
        self._expires_at = float("-inf")
        self._members: dict[str, tuple[str, str, float]] = {}  # name -> (endpoint, role, seen)

    def try_acquire(self, name: str, endpoint: str, ttl: float) -> int | None:
        with self._lock:
            now = self._clock.now()
            if self._expires_at > now:
                return None
            self._term += 1
            self._holder, self._endpoint, self._expires_at = name, endpoint, now + ttl
            return self._term

    def renew(self, name: str, term: int, ttl: float) -> bool:
        with self._lock:
            if term != self._term or name != self._holder:
                return False
            self._expires_at = self._clock.now() + ttl
            return True

    def release(self, name: str, term: int) -> None:
        with self._lock:
            if term == self._term and name == self._holder:
                self._expires_at = min(self._expires_at, self._clock.now())

    def heartbeat(self, name: str, endpoint: str, role: str) -> None:
        with self._lock:
            now = self._clock.now()
            self._members[name] = (endpoint, role, now)
            for other, (_, _, seen) in list(self._members.items()):
                if now - seen > MEMBER_EXPIRY_S:
                    del self._members[other]

    def read(self) -> LeaseView:
        with self._lock:
            now = self._clock.now()
            members = tuple(
                Member(name, endpoint, role, now - seen)
                for name, (endpoint, role, seen) in sorted(self._members.items())
                if now - seen <= MEMBER_EXPIRY_S
            )
            return LeaseView(
                self._term, self._holder, self._endpoint, self._expires_at - now, members
            )

    @contextmanager
    def fenced(self, term: int) -> Iterator[bool]:
        """Hold the lease still while a write of `term` lands: yields whether `term` is the
        current one (what PostgreSQL's `FOR KEY SHARE` on the lease row gives a batch)."""
        with self._lock:
            yield term == self._term

    def close(self) -> None:
        """Nothing to release: the lease lives as long as the database object."""
