"""Follower: a copy of a shared database's jobs, kept current from the rows changed since.

A standby coordinator keeps one (nodes/leadership/warm.py), so that taking over is a read of
the last few seconds of changes instead of a load of every job: with a million jobs queued,
a cold load is ~5 s of a takeover, a catch-up a fraction of a second (bench/takeover.py).

Every row carries a version, drawn from one sequence as it is written. One leader writes at a
time, one batch after another, and a batch of an earlier term never lands after a takeover
(postgres_writer's fence): so versions become visible in increasing order, and the rows with a
version above the highest one read are exactly the rows written since. A deleted row does not
show up as a change. A leader prunes only terminal jobs past their retention, which the copy
forgets by the same rule; a job the copy forgot before the leader deleted its row is kept in
`leftover`, checked at each catch-up, and deleted by the store that takes the copy over. A job
deleted before its retention (extension "Delete") leaves a tombstone at the next version
(postgres_writer): the copy forgets the jobs of the tombstones written since before it takes in
the rows, since a row read in the same snapshot was written after any tombstone of its id (a
client may name a deleted job's id again).
"""

from __future__ import annotations

import threading
from typing import NamedTuple, Protocol

from actors.store.memory import MemoryStore
from actors.store.record import RecordError
from actors.store.sqlite import StoreError


class Changes(NamedTuple):
    """What a Feed read since a version: the records of the rows written since, in the order
    they were written, the ids of the jobs deleted since (their tombstones), and the highest
    version read."""

    rows: list[bytes]
    deleted: list[str]
    seen: int


class Feed(Protocol):
    """Reads a database's job rows for a Follower."""

    name: str  # for messages: never a password

    def load(self, index: MemoryStore) -> int:
        """Every row and every setting into `index`; the highest version read."""
        ...

    def changes(self, since: int) -> Changes:
        """The rows and tombstones written after version `since`, read in one snapshot (`seen`
        is `since` when none was)."""
        ...

    def existing(self, job_ids: list[str]) -> list[str]:
        """Those of `job_ids` whose rows the database still holds."""
        ...

    def settings(self) -> dict[str, bytes]:
        """Every setting (actors.store.base.Store.settings): a small table, read whole."""
        ...

    def close(self) -> None: ...


class Follower:
    """An index of every job, loaded from a Feed and kept current by `catch_up`.

    Loads at construction (seconds for a million jobs). Thread-safe: a catch-up and a store
    taking the copy over (`take`) never overlap.
    """

    def __init__(self, feed: Feed, index: MemoryStore) -> None:
        self.feed = feed
        self.index = index
        try:
            self.seen = feed.load(index)
        except BaseException:
            feed.close()
            raise
        self.leftover: list[str] = []  # forgotten here, maybe not yet deleted by the leader
        self._lock = threading.Lock()
        self._taken = False

    def catch_up(self, now: float) -> int:
        """Take in the rows and tombstones written since the last read and forget the jobs
        past their retention at `now`; the number of rows and tombstones read. Raises
        StoreError (database) or RecordError (an unreadable row)."""
        with self._lock:
            assert not self._taken, "a follower taken over by a store reads no more"
            rows, deleted, seen = self.feed.changes(self.seen)
            self.index.forget(deleted)  # first: a row read with them is newer than its tombstone
            try:
                self.index.load(rows)
            except RecordError as exc:
                raise StoreError(
                    f"the store {self.feed.name} holds an unreadable job row: {exc}"
                ) from exc
            self.seen = seen
            self.index.load_settings(self.feed.settings())
            forgotten = self.leftover + self.index.expire(now)
            self.leftover = self.feed.existing(forgotten) if forgotten else []
            return len(rows) + len(deleted)

    def take(self) -> tuple[MemoryStore, list[str]]:
        """Hand the copy to the store that will write under a new term (after a last
        `catch_up` under that term): the index, and the rows that store must delete."""
        with self._lock:
            self._taken = True
            return self.index, self.leftover

    def close(self) -> None:
        """Drop the copy (a follower not taken over)."""
        with self._lock:
            if not self._taken:
                self._taken = True
                self.feed.close()
