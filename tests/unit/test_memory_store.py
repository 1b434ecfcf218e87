"""MemoryStore over job records: expire gives the ids it forgot, by each job's last end, and a
queued job costs a few hundred bytes, not a wire dict's ~1 KB. What every store holds to
(get, list, counts, unfinished) is tested in test_store_contract.py."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from actors import lifecycle, states
from actors.jobs import Job
from actors.queue import QueueCore
from actors.store.memory import MemoryStore
from nodes.request_ids import new_request_id
from tests.unit.store_jobs import T0, end, make, nonzero
from transport.validation.jobs import job_spec

RETENTION_S = 100.0


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(completed_retention_s=RETENTION_S, discarded_retention_s=2 * RETENTION_S)


def test_expire_forgets_terminal_jobs_past_their_retention_and_fixes_the_counts(store):
    jobs = [make(n) for n in range(4)]
    store.add(jobs)
    store.save(end(jobs[0], states.COMPLETED, T0 + 10))
    store.save(end(jobs[1], states.DISCARDED, T0 + 10))
    store.save(end(jobs[2], states.CANCELLED, T0 + 20))
    assert store.expire(T0 + 10 + RETENTION_S - 1) == []
    assert store.expire(T0 + 10 + RETENTION_S) == [jobs[0].id]
    assert store.expire(T0 + 20 + 2 * RETENTION_S) == [jobs[1].id, jobs[2].id]
    assert [store.get(job.id) is None for job in jobs] == [True, True, True, False]
    assert nonzero(store.counts()["default"]) == {"available": 1}


def test_a_job_saved_again_after_it_ended_is_expired_by_its_last_end_only(store):
    job = make(1)
    store.add([job])
    store.save(end(job, states.DISCARDED, T0))
    lifecycle.revive(job)  # retried by hand
    store.save(job)
    assert store.expire(T0 + 10 * RETENTION_S) == []
    store.save(end(job, states.COMPLETED, T0 + 1000))
    assert store.expire(T0 + 1000 + RETENTION_S - 1) == []
    assert store.expire(T0 + 1000 + RETENTION_S) == [job.id]
    assert sum(store.counts()["default"].values()) == 0


def queued_cost(count: int, *, request_ids: bool = False) -> float:
    """Bytes per queued no-op job, its store record and queue place; with `request_ids`, each
    enqueued alone under a request id of its own, as Client makes them."""
    specs = [job_spec({"type": "noop", "args": []}) for _ in range(count)]
    store, core = MemoryStore(), QueueCore("default")
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        made_by = [new_request_id() if request_ids else None for _ in range(count)]
        jobs = [
            Job.from_spec(spec, f"{n:08x}-aaaa-7bbb-8ccc-0123456789ab", T0 + n, n + 300, rid)
            for n, (spec, rid) in enumerate(zip(specs, made_by, strict=True))
        ]
        del made_by  # the request ids now live only as the jobs' (a decoded request's)
        if request_ids:
            for job in jobs:
                store.add([job])
        else:
            store.add(jobs)
        for job in jobs:
            core.add(job)
        del jobs
        gc.collect()
        return (tracemalloc.get_traced_memory()[0] - before) / count
    finally:
        tracemalloc.stop()


MEASURED_JOBS = 20_000


@pytest.fixture(scope="module")
def plain_cost() -> float:
    """`queued_cost` of jobs enqueued in one batch without request ids, measured once for the
    two tests below."""
    return queued_cost(MEASURED_JOBS)


def test_a_queued_no_op_job_with_its_store_record_and_queue_place_costs_under_800_bytes(
    plain_cost,
):
    """The issue's budget: a million queued jobs in well under 1 GiB (was ~1,700 bytes)."""
    assert plain_cost < 800, f"{plain_cost:.0f} bytes per queued job"


def test_a_request_id_per_job_costs_its_string_record_bytes_and_index_slot_only(plain_cost):
    """The worst case, every job enqueued alone: ~120 bytes more. The id string (16 characters,
    65 bytes) is held once, by the job, its entry and the index key alike; the record grows by
    18 bytes; the rest is the index slot and a pointer each in Job and Entry. A batch shares one
    id string and key; its jobs' records each hold the 18 bytes."""
    with_ids = queued_cost(MEASURED_JOBS, request_ids=True)
    assert with_ids - plain_cost < 150, f"{plain_cost:.0f} -> {with_ids:.0f} bytes per queued job"
