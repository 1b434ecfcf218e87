"""Jobs for the store tests, and every store kind opened the same way (`StoreKinds`): memory,
SQLite on a temporary file, PostgreSQL on a fresh database of the session's private cluster and
the simulation's SharedStore on a MemoryDatabase; the last two under a lease term taken first.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from actors import lifecycle, states
from actors.clock import ManualClock
from actors.jobs import Job
from actors.store import record
from actors.store.follower import Follower
from actors.store.memory import MemoryStore
from actors.store.postgres import PostgresFeed, PostgresStore
from actors.store.postgres_lease import PostgresLease
from actors.store.shared import MemoryDatabase, MemoryFeed, SharedStore
from actors.store.sqlite import SqliteStore
from transport.jobspec import DEFAULT_RETRY, EMPTY_MAP
from transport.messages import ErrorInfo
from transport.validation.jobs import job_spec

T0 = 1_700_000_000.0
WAIT_S = 10.0
KINDS = ("memory", "sqlite", "postgresql", "shared")
DURABLE = ("sqlite", "postgresql")  # a writer thread, commits, a file or server of their own
LEASE_TTL_S = 3600.0  # the tests' lease outlives the test


# -- jobs built from a spec and moved through the lifecycle ---------------------------------------


def make(n: int, *, queue: str = "default", job_type: str = "noop", **spec: Any) -> Job:
    raw = {"type": job_type, "queue": queue, **spec}
    return Job.from_spec(job_spec(raw), f"job-{n:05d}", T0 + n, seq=n)


def run(job: Job, at: float) -> Job:
    lifecycle.activate(job, at, "w-1", 30.0)
    return job


def end(job: Job, state: str, at: float, result: Any = None) -> Job:
    if job.state != states.ACTIVE:
        run(job, at)
    if state == states.COMPLETED:
        lifecycle.complete(job, at, result)
    elif state == states.DISCARDED:
        lifecycle.fail(job, at, ErrorInfo("Boom", "no", retryable=False), random.Random(0))
    else:
        lifecycle.cancel(job, at)
    return job


def nonzero(by_state: dict[str, int]) -> dict[str, int]:
    return {state: n for state, n in by_state.items() if n}


# -- jobs built field by field (any state at once) ------------------------------------------------


def make_job(n: int, *, state: str = states.AVAILABLE, **fields: Any) -> Job:
    job = Job(
        id=f"job-{n:05d}",
        type="square",
        args=(n,),
        queue=fields.pop("queue", "default"),
        priority=0,
        scheduled_at=None,
        max_attempts=3,
        retry=DEFAULT_RETRY,
        timeout=None,
        route=EMPTY_MAP,
        unique_key=fields.pop("unique_key", None),
        meta=EMPTY_MAP,
        created_at=T0 + n,
        state=state,
    )
    for name, value in fields.items():
        setattr(job, name, value)
    return job


def finish(job: Job, state: str, at: float | None, **fields: Any) -> Job:
    job.state = state
    job.completed_at = at
    for name, value in fields.items():
        setattr(job, name, value)
    return job


# -- every store kind -----------------------------------------------------------------------------


class StoreKinds:
    """Opens stores of one kind, always over the same file or database; `open` may be called
    again after `close` (a restart). Every store still open is closed at teardown.

    A PostgreSQL or shared store is opened under `term`, which `hold_lease` takes."""

    def __init__(self, kind: str, location: str, term: int = 0) -> None:
        self.kind, self.location, self.term = kind, location, term
        self.db = MemoryDatabase(ManualClock()) if kind == "shared" else None
        self.opened: list[Any] = []

    def hold_lease(self) -> None:
        """Take the lease of the database (as the coordinator opening the store would)."""
        if self.db is not None:
            term = self.db.lease.try_acquire("tests", "tcp://tests", LEASE_TTL_S)
        else:
            lease = PostgresLease(self.location)
            try:
                term = lease.try_acquire("tests", "tcp://tests", LEASE_TTL_S)
            finally:
                lease.close()
        assert term is not None
        self.term = term

    def open(self, **options: Any) -> Any:
        if self.kind == "memory":
            options.pop("activity", None)
            store: Any = MemoryStore(**options)
        elif self.kind == "sqlite":
            store = SqliteStore(self.location, **options)
        elif self.kind == "shared":
            assert self.db is not None
            store = SharedStore(self.db, term=self.term, **options)
        else:
            store = PostgresStore(self.location, term=self.term, **options)
        self.opened.append(store)
        return store

    def follow(self, **retention: float) -> Follower:
        """A standby's copy of the shared database's jobs (PostgreSQL or shared kinds)."""
        if self.db is not None:
            feed: Any = MemoryFeed(self.db)
        else:
            feed = PostgresFeed(self.location)
        follower = Follower(feed, MemoryStore(**retention))
        self.opened.append(follower)
        return follower

    def read_back(self, job_id: str) -> str | None:
        """The state as stored, through a connection of its own (what a restart would read)."""
        if self.db is not None:
            blob = self.db.rows.get(job_id)
            return record.unpack(blob)["state"] if blob else None
        if self.kind == "sqlite":
            connection = sqlite3.connect(self.location)
            try:
                found = connection.execute(
                    "SELECT state FROM jobs WHERE id = ?", (job_id,)
                ).fetchone()
            finally:
                connection.close()
        else:
            import psycopg

            with psycopg.connect(self.location) as pg:
                found = pg.execute("SELECT state FROM jobs WHERE id = %s", [job_id]).fetchone()
        return found[0] if found else None

    def close_all(self) -> None:
        for store in self.opened:
            if hasattr(store, "close"):
                store.close()


def take_over(kinds: StoreKinds) -> None:
    """Another coordinator takes the lease: the holder steps down, a standby takes term + 1."""
    if kinds.db is not None:
        lease: Any = kinds.db.lease
    else:
        lease = PostgresLease(kinds.location)
    try:
        lease.release("tests", kinds.term)
        term = lease.try_acquire("standby", "tcp://standby", LEASE_TTL_S)
    finally:
        lease.close()
    assert term is not None
    kinds.term = term


def open_kind(request: pytest.FixtureRequest, kind: str, tmp_path: Any) -> Iterator[StoreKinds]:
    if kind == "postgresql":
        location = request.getfixturevalue("postgres").database()
    else:
        location = str(tmp_path / "corral.db")
    kinds = StoreKinds(kind, location)
    if kind in ("postgresql", "shared"):
        kinds.hold_lease()
    yield kinds
    kinds.close_all()


@pytest.fixture(params=KINDS)
def stores(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[StoreKinds]:
    """Each kind of store in turn (test modules import this fixture)."""
    yield from open_kind(request, request.param, tmp_path)


@pytest.fixture(params=DURABLE)
def durable(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[StoreKinds]:
    """Each durable kind of store in turn, for tests that reopen it."""
    yield from open_kind(request, request.param, tmp_path)
