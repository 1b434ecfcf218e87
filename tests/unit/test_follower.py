"""A standby's copy of the jobs (actors/store/follower.py) over PostgreSQL and the simulation's
MemoryDatabase: it reads only the rows written since, ends equal to a cold load, forgets what
the leader forgets, and the store that takes it over after a takeover writes as a leader."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from actors import states
from actors.store.follower import Follower
from actors.store.memory import MemoryStore
from actors.store.shared import MemoryFeed
from actors.store.sqlite import StoreError
from tests.unit.store_jobs import (
    T0,
    WAIT_S,
    StoreKinds,
    end,
    make,
    open_kind,
    run,
    take_over,
)

RETENTION = {"completed_retention_s": 100.0, "discarded_retention_s": 1000.0}


@pytest.fixture(params=("postgresql", "shared"))
def shared(request, tmp_path) -> Iterator[StoreKinds]:
    yield from open_kind(request, request.param, tmp_path)


def held(store: Any) -> dict[str, Any]:
    """Everything a coordinator reads of a store, to compare two of them."""
    jobs = store.list(limit=1_000)
    return {
        "counts": {q: {s: n for s, n in c.items() if n} for q, c in store.counts().items()},
        "jobs": {wire["id"]: wire for wire in jobs},
        "unfinished": [entry.blob for entry in store.unfinished()],
        "unique": {key: store.unique_holder(key) for key in ("report", "export")},
    }


def landed(store: Any) -> None:
    assert store.flush(WAIT_S)


def test_a_follower_reads_only_what_was_written_since_and_ends_equal_to_a_cold_load(shared):
    leader = shared.open(**RETENTION)
    first = [make(n) for n in range(5)]
    leader.add(first)
    landed(leader)
    follower = shared.follow(**RETENTION)
    assert follower.catch_up(T0) == 0  # nothing written since it loaded

    leader.save(run(first[0], T0 + 1))
    leader.save(end(first[1], states.COMPLETED, T0 + 2, result=[1, 2]))
    unique = make(10, unique_key="report")
    leader.add([unique])
    batch = [with_request(make(n), "req-1") for n in (11, 12)]
    leader.add(batch)
    landed(leader)
    assert follower.catch_up(T0 + 3) == 5  # two saves, three new jobs: nothing else

    leader.save(end(first[0], states.COMPLETED, T0 + 4))
    leader.save(end(unique, states.DISCARDED, T0 + 5))
    landed(leader)
    assert follower.catch_up(T0 + 6) == 2
    cold = shared.open(**RETENTION)
    assert held(follower.index) == held(cold) == held(leader)
    assert follower.index.unique_holder("report") is None  # freed when its job was discarded
    replay = follower.index.add([with_request(make(99), "req-1")])  # a retried enqueue
    assert [wire["id"] for wire in replay.jobs] == [job.id for job in batch]


def test_the_store_taking_a_follower_over_after_a_takeover_leads_with_every_job(shared):
    old = shared.open(**RETENTION)
    jobs = [make(n) for n in range(4)]
    old.add(jobs)
    landed(old)
    follower = shared.follow(**RETENTION)
    old.save(run(jobs[0], T0 + 1))  # lands before the takeover: the last catch-up reads it
    landed(old)
    take_over(shared)
    old.save(end(jobs[1], states.COMPLETED, T0 + 2))  # the deposed leader: never lands
    assert not old.flush(WAIT_S)
    follower.catch_up(T0 + 3)
    new = shared.open(follower=follower, **RETENTION)
    assert new.get(jobs[0].id)["state"] == states.ACTIVE
    assert new.get(jobs[1].id)["state"] == states.AVAILABLE
    new.save(end(jobs[2], states.COMPLETED, T0 + 4))
    landed(new)
    assert shared.read_back(jobs[2].id) == states.COMPLETED
    with pytest.raises(AssertionError):
        follower.catch_up(T0 + 5)  # its index is the store's now


def test_a_job_the_copy_forgot_before_the_leader_deleted_its_row_is_deleted_by_the_next_leader(
    shared,
):
    leader = shared.open(**RETENTION)
    jobs = [make(n) for n in range(3)]
    leader.add(jobs)
    leader.save(end(jobs[0], states.COMPLETED, T0 + 1))
    leader.save(end(jobs[1], states.COMPLETED, T0 + 50))
    landed(leader)
    follower = shared.follow(**RETENTION)
    # Past jobs[0]'s retention on the follower's clock, before the leader pruned it.
    follower.catch_up(T0 + 120)
    assert follower.index.get(jobs[0].id) is None and follower.leftover == [jobs[0].id]
    assert leader.prune(T0 + 200) == 2  # the leader forgets both; the copy is told nothing
    landed(leader)
    follower.catch_up(T0 + 200)
    assert follower.leftover == [] and follower.index.get(jobs[1].id) is None
    assert shared.read_back(jobs[0].id) is None

    # The leader dies before it prunes: the next one deletes what its copy forgot.
    leader.save(end(jobs[2], states.COMPLETED, T0 + 210))
    landed(leader)
    follower.catch_up(T0 + 400)
    assert follower.leftover == [jobs[2].id] and shared.read_back(jobs[2].id) is not None
    take_over(shared)
    new = shared.open(follower=follower, **RETENTION)
    landed(new)
    assert shared.read_back(jobs[2].id) is None


def test_a_cut_off_follower_fails_with_the_database_named_and_catches_up_afterwards(tmp_path):
    kinds = StoreKinds("shared", str(tmp_path))
    kinds.hold_lease()
    leader = kinds.open()
    cut = [False]
    assert kinds.db is not None
    follower = Follower(MemoryFeed(kinds.db, lambda: cut[0]), MemoryStore())
    cut[0] = True
    leader.add([make(1)])
    with pytest.raises(StoreError, match="cannot be reached"):
        follower.catch_up(T0)
    cut[0] = False
    assert follower.catch_up(T0) == 1 and follower.index.get("job-00001") is not None
    kinds.close_all()


def with_request(job: Any, request_id: str) -> Any:
    job.request_id = request_id
    return job

