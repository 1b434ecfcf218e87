"""SharedDatabase: a database several coordinators share, as leadership needs it.

It gives each coordinator a lease handle (actors/store/lease.py) and opens the job store
under a term, fenced so that a batch of an earlier term never lands. PostgreSQL is the real
one; a MemoryDatabase (actors/store/shared.py) stands in for it in simulations and tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from actors.store.base import Store
from actors.store.lease import Lease
from actors.store.shared import MemoryDatabase, SharedStore


class SharedDatabase(Protocol):
    name: str  # for messages: never a password

    def lease(self) -> Lease: ...

    def open(self, term: int, on_deposed: Callable[[], None]) -> Store:
        """The job store, loaded, writing under `term`; `on_deposed` runs (once, on the
        writer's thread) when a batch is refused because another term began."""
        ...


class InMemory:
    """A MemoryDatabase shared by coordinators in one process (simulation)."""

    def __init__(self, database: MemoryDatabase) -> None:
        self.database = database
        self.name = "memory"

    def lease(self) -> Lease:
        return self.database.lease

    def open(self, term: int, on_deposed: Callable[[], None]) -> Store:
        return SharedStore(self.database, term=term, on_deposed=on_deposed)


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

    def open(self, term: int, on_deposed: Callable[[], None]) -> Store:
        from actors.store.postgres import PostgresStore

        return PostgresStore(self.url, term=term, on_deposed=on_deposed, **self.retention)
