"""SharedDatabase: a database several coordinators share, as leadership needs it.

It gives each coordinator a lease handle (actors/store/lease.py), a copy of the jobs for a
standby to keep current (actors/store/follower.py), and opens the job store under a term,
fenced so that a batch of an earlier term never lands. PostgreSQL is the real
one; a MemoryDatabase (actors/store/shared.py) stands in for it in simulations and tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from actors.store.base import Store
from actors.store.follower import Follower
from actors.store.lease import Lease
from actors.store.memory import MemoryStore
from actors.store.shared import MemoryDatabase, MemoryFeed, SharedStore
from actors.store.sqlite import StoreError


class SharedDatabase(Protocol):
    name: str  # for messages: never a password

    def lease(self) -> Lease: ...

    def follow(self) -> Follower:
        """A copy of the jobs, loaded now, that a standby keeps current (seconds per million
        jobs). Raises StoreError when the database cannot be read."""
        ...

    def open(
        self, term: int, on_deposed: Callable[[], None], follower: Follower | None = None
    ) -> Store:
        """The job store writing under `term`, over `follower` (caught up under `term`) or
        loaded anew; `on_deposed` runs (once, on the writer's thread) when a batch is refused
        because another term began."""
        ...


class InMemory:
    """A MemoryDatabase shared by coordinators in one process (simulation). While `cut()`
    holds, this coordinator's lease calls fail as if the database were unreachable."""

    def __init__(self, database: MemoryDatabase, cut: Callable[[], bool] = lambda: False) -> None:
        self.database = database
        self.cut = cut
        self.name = "memory"

    def lease(self) -> Lease:
        return _Reachable(self.database.lease, self.cut)

    def follow(self) -> Follower:
        return Follower(MemoryFeed(self.database, self.cut), MemoryStore())

    def open(
        self, term: int, on_deposed: Callable[[], None], follower: Follower | None = None
    ) -> Store:
        return SharedStore(self.database, term=term, on_deposed=on_deposed, follower=follower)


class _Reachable:
    """A lease whose every call fails with StoreError while `cut()` holds (simulated faults)."""

    def __init__(self, lease: Lease, cut: Callable[[], bool]) -> None:
        self._lease = lease
        self._cut = cut

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._lease, name)
        if name == "close":
            return call

        def guarded(*args: Any) -> Any:
            if self._cut():
                raise StoreError("the database cannot be reached (simulated cut)")
            return call(*args)

        return guarded


class Postgres:
    """A PostgreSQL database: the lease on a connection of its own, the store on another."""

    def __init__(self, url: str, retention: dict[str, float]) -> None:
        from actors.store.postgres import redacted

        self.url = url
        self.retention = retention
        self.name = redacted(url)

    def lease(self) -> Lease:
        from actors.store.postgres_lease import PostgresLease

        return PostgresLease(self.url)

    def follow(self) -> Follower:
        from actors.store.postgres import PostgresFeed

        index = MemoryStore(**self.retention)
        return Follower(PostgresFeed(self.url), index)

    def open(
        self, term: int, on_deposed: Callable[[], None], follower: Follower | None = None
    ) -> Store:
        from actors.store.postgres import PostgresStore

        return PostgresStore(
            self.url, term=term, on_deposed=on_deposed, follower=follower, **self.retention
        )
