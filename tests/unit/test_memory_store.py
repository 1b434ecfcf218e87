"""MemoryStore over job records: what get, list, counts, expire and unfinished give is what the
jobs were when last saved, and a queued job costs a few hundred bytes, not a wire dict's ~1 KB."""

from __future__ import annotations

import gc
import random
import tracemalloc
from typing import Any

import pytest

from actors import lifecycle, states
from actors.jobs import Job
from actors.queue import QueueCore
from actors.store import record
from actors.store.memory import MemoryStore
from transport.messages import EMPTY_MAP, ErrorInfo
from transport.validation.jobs import job_spec

T0 = 1_700_000_000.0
RETENTION_S = 100.0


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


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(completed_retention_s=RETENTION_S, discarded_retention_s=2 * RETENTION_S)


def test_get_gives_the_wire_form_of_the_last_save_and_a_copy_each_time(store):
    job = make(1, args=[1, 2], route={"gpu": "a100"}, meta={"owner": "ops"})
    store.add([job])
    assert store.get(job.id) == job.to_wire()
    store.save(end(job, states.COMPLETED, T0 + 5, result={"ok": True}))
    got = store.get(job.id)
    assert got == job.to_wire() and got["result"] == {"ok": True}
    got["state"] = "tampered"
    assert store.get(job.id)["state"] == states.COMPLETED
    assert store.get("no-such-job") is None


def test_counts_follow_every_save_per_queue_and_state(store):
    jobs = [make(n, queue="a" if n % 2 else "b") for n in range(6)]
    store.add(jobs)
    store.save(run(jobs[0], T0))
    store.save(end(jobs[1], states.COMPLETED, T0))
    store.save(end(jobs[3], states.DISCARDED, T0))
    store.save(jobs[3])  # the same state again counts once
    counts = store.counts()
    assert nonzero(counts["a"]) == {"available": 1, "completed": 1, "discarded": 1}
    assert nonzero(counts["b"]) == {"available": 2, "active": 1}


def test_a_duplicate_unique_key_returns_the_holders_wire_form_and_is_not_stored(store):
    holder = make(1, unique_key="nightly")
    assert store.add([holder]) == [None]
    duplicate = make(2, unique_key="nightly")
    assert store.add([duplicate]) == [holder.to_wire()]
    assert store.get(duplicate.id) is None
    assert store.counts()["default"]["available"] == 1


def test_a_listing_filters_on_queue_state_and_type_and_unpacks_only_what_it_returns(
    store, monkeypatch
):
    store.add([make(n, queue="a" if n % 2 else "b", job_type=f"t{n % 3}") for n in range(30)])
    dead = end(make(7, queue="a", job_type="t1"), states.DISCARDED, T0 + 99)
    store.save(dead)
    unpacked: list[bytes] = []
    real = record.unpack

    def counted(blob: bytes) -> dict[str, Any]:
        unpacked.append(blob)
        return real(blob)

    monkeypatch.setattr(record, "unpack", counted)
    newest = store.list(limit=3)
    assert [wire["id"] for wire in newest] == ["job-00029", "job-00028", "job-00027"]
    assert len(unpacked) == 3
    listed = store.list(queue="a", type="t1")
    assert [wire["id"] for wire in listed] == [f"job-{n:05d}" for n in (25, 19, 13, 7, 1)]
    assert all(wire["queue"] == "a" and wire["type"] == "t1" for wire in listed)
    assert store.list(state=states.DISCARDED) == [dead.to_wire()]
    assert store.list(queue="nowhere") == []
    assert len(unpacked) == 3 + 5 + 1


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


def test_unfinished_gives_the_non_terminal_jobs_as_compact_jobs(store):
    jobs = [make(n) for n in range(3)]
    store.add(jobs)
    store.save(run(jobs[1], T0 + 1))
    store.save(end(jobs[2], states.COMPLETED, T0 + 2))
    found = {job.id: job for job in store.unfinished()}
    assert set(found) == {jobs[0].id, jobs[1].id}
    assert found[jobs[1].id].to_wire() == jobs[1].to_wire()
    assert found[jobs[0].id].route is EMPTY_MAP and found[jobs[0].id].args == ()


def test_a_queued_no_op_job_with_its_store_record_and_queue_place_costs_under_800_bytes():
    """The issue's budget: a million queued jobs in well under 1 GiB (was ~1,700 bytes)."""
    count = 20_000
    specs = [job_spec({"type": "noop", "args": []}) for _ in range(count)]
    store, core = MemoryStore(), QueueCore("default")
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        jobs = [
            Job.from_spec(spec, f"{n:08x}-aaaa-7bbb-8ccc-0123456789ab", T0 + n, n + 300)
            for n, spec in enumerate(specs)
        ]
        store.add(jobs)
        for job in jobs:
            core.add(job)
        del jobs
        gc.collect()
        per_job = (tracemalloc.get_traced_memory()[0] - before) / count
    finally:
        tracemalloc.stop()
    assert per_job < 800, f"{per_job:.0f} bytes per queued job"
