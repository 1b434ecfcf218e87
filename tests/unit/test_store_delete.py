"""The Delete part of the Store contract (docs/PROTOCOL.md, extension "Delete"), held by every
store (memory, SQLite, PostgreSQL, the simulation's SharedStore): `delete` forgets an ended job
exactly as pruning forgets one at the end of its retention (its record, its counts, its request
id, its row on disk), refuses a job that has not ended, and on a shared database leaves a
tombstone, so a standby's copy forgets the job too and a takeover does not bring it back.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from actors import states
from actors.store.base import Replay
from actors.store.memory import MemoryStore
from tests.unit.store_jobs import (
    T0,
    WAIT_S,
    StoreKinds,
    end,
    finish,
    make,
    make_job,
    nonzero,
    open_kind,
    take_over,
)
from tests.unit.test_store_request_ids import ids, request
from transport.errors import BadRequest

RETENTION = {"completed_retention_s": 100.0, "discarded_retention_s": 1000.0}
NOT_ENDED = (
    states.SCHEDULED,
    states.AVAILABLE,
    states.ACTIVE,
    states.RETRYABLE,
    states.DEFERRED,
)


@pytest.fixture(params=("sqlite", "postgresql", "shared"))
def reopenable(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[StoreKinds]:
    yield from open_kind(request, request.param, tmp_path)


@pytest.fixture(params=("postgresql", "shared"))
def shared(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[StoreKinds]:
    yield from open_kind(request, request.param, tmp_path)


def landed(store: Any) -> None:
    if hasattr(store, "flush"):
        assert store.flush(WAIT_S)


def tombstones(kinds: StoreKinds) -> dict[str, float]:
    """The shared database's tombstones: job id -> forget_at."""
    if kinds.db is not None:
        return {job_id: at for job_id, (_, at) in kinds.db.tombstones.items()}
    import psycopg

    with psycopg.connect(kinds.location) as pg:
        return dict(pg.execute("SELECT id, forget_at FROM jobs_deleted").fetchall())


# -- every store ----------------------------------------------------------------------------------


def test_an_ended_job_of_each_kind_is_forgotten_with_its_counts_and_listing(stores):
    store = stores.open(**RETENTION)
    jobs = [make_job(n, queue="q") for n in range(4)]
    store.add(jobs)
    store.save(finish(jobs[0], states.COMPLETED, T0 + 1, result=1))
    store.save(finish(jobs[1], states.DISCARDED, T0 + 2))
    store.save(finish(jobs[2], states.CANCELLED, T0 + 3))

    for job in jobs[:3]:
        assert store.delete(job.id) is True
        assert store.get(job.id) is None
    assert nonzero(store.counts()["q"]) == {states.AVAILABLE: 1}
    assert [wire["id"] for wire in store.list()] == [jobs[3].id]
    assert [wire["id"] for wire in store.list(state=states.DISCARDED)] == []
    assert store.delete(jobs[0].id) is False  # a second delete: no such job any more
    landed(store)
    if stores.kind != "memory":
        assert stores.read_back(jobs[0].id) is None and stores.read_back(jobs[3].id) is not None


@pytest.mark.parametrize("state", NOT_ENDED)
def test_a_job_that_has_not_ended_is_refused_and_nothing_changes(stores, state):
    store = stores.open()
    job = make_job(1)
    store.add([job])
    store.save(make_job(1, state=state, attempt=1, worker_id="w-1"))
    counts = store.counts()
    says = f"job {job.id} is {state}: only an ended job can be deleted \\(cancel it first\\)"
    with pytest.raises(BadRequest, match=says):
        store.delete(job.id)
    assert store.get(job.id)["state"] == state and store.counts() == counts


def test_an_unknown_id_deletes_nothing(stores):
    store = stores.open()
    store.add([make_job(1)])
    counts = store.counts()
    assert store.delete("no-such-job") is False
    assert store.counts() == counts


def test_a_deleted_jobs_request_id_no_longer_replays_its_enqueue(stores):
    store = stores.open()
    [single] = request("req-1", 1)
    first, second = batch = request("req-b", 2, 3)
    store.add([single])
    store.add(batch)
    store.save(end(single, states.COMPLETED, T0 + 5, result=1))
    store.save(end(first, states.COMPLETED, T0 + 6, result=2))

    assert store.delete(single.id)
    [again] = request("req-1", 4)
    assert store.add([again]) == [None]  # a new request: the resend makes a new job
    assert ids(store.add(request("req-1", 5))) == [again.id]
    assert store.delete(first.id)
    assert ids(store.add(request("req-b", 6))) == [second.id]  # what the batch still holds
    store.save(end(second, states.DISCARDED, T0 + 7))
    assert store.delete(second.id)
    assert not isinstance(store.add(request("req-b", 7)), Replay)
    assert store.made_by("req-b") == [store.get(make(7).id)]


def test_pruning_skips_a_deleted_job_and_never_prunes_its_id_made_again(stores):
    store = stores.open(**RETENTION)
    job, other = make_job(1), make_job(2)
    store.add([job, other])
    store.save(finish(job, states.COMPLETED, T0 + 1))
    store.save(finish(other, states.COMPLETED, T0 + 2))
    assert store.delete(job.id)
    assert store.prune(T0 + 1000) == 1  # `other` only: the deleted one is gone already
    landed(store)

    again = make_job(3)
    again.id = job.id  # a client names the deleted job's id again (extension "Job ids")
    store.add([again])
    store.save(finish(again, states.COMPLETED, T0 + 900))
    assert store.delete(again.id)
    store.add([make_job(4)])
    made_again = make_job(5)
    made_again.id = job.id
    store.add([made_again])
    assert store.prune(T0 + 10_000) == 0  # the old entries of its id do not prune it
    assert store.get(job.id)["state"] == states.AVAILABLE
    landed(store)
    if stores.kind != "memory":
        assert stores.read_back(job.id) == states.AVAILABLE


def test_deleting_many_ended_jobs_lets_the_retention_order_shrink_with_them():
    """The memory index leaves a deleted job's place in its retention deque (finding it there
    is a scan) and rebuilds the deque once such places outnumber half of it: the records of
    deleted jobs do not stay in memory until their retention."""
    store = MemoryStore()
    jobs = [make_job(n) for n in range(1000)]
    store.add(jobs)
    for job in jobs:
        store.save(finish(job, states.DISCARDED, T0 + job.created_at - T0))
    for job in jobs[:900]:
        assert store.delete(job.id)
    assert len(store._ended[states.DISCARDED]) < 400
    assert store.prune(T0 + 10**7) == 100


# -- durable stores -------------------------------------------------------------------------------


def test_a_deleted_job_stays_deleted_after_a_reopen_and_its_request_id_with_it(reopenable):
    store = reopenable.open(**RETENTION)
    [job] = request("req-1", 1)
    kept = make(2)
    store.add([job])
    store.add([kept])
    store.save(end(job, states.DISCARDED, T0 + 5))
    assert store.delete(job.id)
    replied = threading.Event()
    store.after_commit(replied.set)
    assert replied.wait(WAIT_S)
    assert reopenable.read_back(job.id) is None  # gone from disk once the reply may leave
    store.close()

    reopened = reopenable.open(**RETENTION)
    assert reopened.get(job.id) is None and reopened.get(kept.id) is not None
    assert nonzero(reopened.counts()["default"]) == {states.AVAILABLE: 1}
    assert reopened.add(request("req-1", 3)) == [None]  # no replay: a new job


def test_a_job_deleted_then_made_again_in_one_batch_lands_as_made_again(durable):
    """The writer keeps the last change per job: a row saved after its job's deletion (a
    client naming the deleted id again) is written, not deleted after."""
    store = durable.open()
    job = make_job(1)
    store.add([job])
    store.save(finish(job, states.COMPLETED, T0 + 1))
    assert store.flush(WAIT_S)
    again = make_job(2)
    again.id = job.id
    with store._writer._cond:  # nothing commits in between: one batch
        assert store.delete(job.id)
        store.add([again])
    assert store.flush(WAIT_S)
    assert durable.read_back(job.id) == states.AVAILABLE
    store.close()
    assert durable.open().get(job.id)["state"] == states.AVAILABLE


# -- a standby's copy (PostgreSQL and the simulation's database) ----------------------------------


def test_a_standbys_copy_forgets_a_deleted_job_and_a_takeover_does_not_bring_it_back(shared):
    leader = shared.open(**RETENTION)
    [job] = request("req-1", 1)
    others = [make(n) for n in (2, 3)]
    leader.add([job])
    leader.add(others)
    leader.save(end(job, states.COMPLETED, T0 + 5, result=1))
    landed(leader)
    follower = shared.follow(**RETENTION)
    assert follower.index.get(job.id) is not None

    assert leader.delete(job.id)
    landed(leader)
    assert follower.catch_up(T0 + 6) == 1  # one tombstone, no row
    assert follower.index.get(job.id) is None
    assert nonzero(follower.index.counts()["default"]) == {states.AVAILABLE: 2}
    assert follower.index.made_by("req-1") == []  # no replay there either
    cold = shared.open(**RETENTION)
    assert follower.index.get(job.id) is None and cold.get(job.id) is None
    cold.close()

    take_over(shared)
    follower.catch_up(T0 + 7)
    new = shared.open(follower=follower, **RETENTION)
    assert new.get(job.id) is None
    assert nonzero(new.counts()["default"]) == {states.AVAILABLE: 2}


def test_a_copy_reading_a_deletion_and_the_id_made_again_together_keeps_the_new_job(shared):
    leader = shared.open(**RETENTION)
    [job] = request("req-old", 1)
    leader.add([job])
    leader.save(end(job, states.COMPLETED, T0 + 5))
    landed(leader)
    follower = shared.follow(**RETENTION)

    assert leader.delete(job.id)
    [again] = request("req-new", 2)
    again.id = job.id
    leader.add([again])
    landed(leader)
    assert follower.catch_up(T0 + 6) == 2  # the tombstone and the new row, in one read
    assert follower.index.get(job.id)["state"] == states.AVAILABLE
    assert [wire["id"] for wire in follower.index.made_by("req-new")] == [job.id]
    assert follower.index.made_by("req-old") == []


def test_a_tombstone_goes_once_the_copy_would_forget_its_job_by_retention(shared):
    leader = shared.open(**RETENTION)
    jobs = [make(n) for n in (1, 2)]
    leader.add(jobs)
    leader.save(end(jobs[0], states.COMPLETED, T0 + 5))
    leader.save(end(jobs[1], states.DISCARDED, T0 + 5))
    assert leader.delete(jobs[0].id) and leader.delete(jobs[1].id)
    landed(leader)
    assert tombstones(shared) == {jobs[0].id: T0 + 105, jobs[1].id: T0 + 1005}

    leader.prune(T0 + 105)
    leader.add([make(3)])  # the tombstones due go with the next batch
    landed(leader)
    assert tombstones(shared) == {jobs[1].id: T0 + 1005}

    # A copy loaded after the tombstone went never held the job; one loaded before forgets
    # it by its retention, as for a pruned job.
    follower = shared.follow(**RETENTION)
    assert follower.index.get(jobs[0].id) is None
    leader.prune(T0 + 1005)
    leader.add([make(4)])
    landed(leader)
    assert tombstones(shared) == {}
