"""Parked `get {wait}` requests (actors/waiters.py): answered with the job once it ends or the
wait runs out, and with `unknown_job` when the job is gone by the time they are answered (it
ended and was deleted, extension "Delete", or pruned, between the dispatcher's look and the
parking)."""

from __future__ import annotations

from typing import Any

from actors import events, states
from actors.clock import ManualClock
from actors.store.memory import MemoryStore
from actors.waiters import JobWaiters
from tests.unit.store_jobs import T0, finish, make_job
from transport import codec


def parked(store: MemoryStore) -> tuple[JobWaiters, ManualClock, list[dict[str, Any]]]:
    clock, hub, sent = ManualClock(), events.EventHub(), []
    waiters = JobWaiters(clock, store, lambda peer, frame: sent.append(codec.decode(frame)), hub)
    return waiters, clock, sent


def test_a_parked_get_is_answered_with_the_job_as_it_ends():
    store = MemoryStore()
    job = make_job(1)
    store.add([job])
    waiters, clock, sent = parked(store)
    waiters.wait(job.id, b"peer", 7, 60.0)
    assert sent == []
    store.save(finish(job, states.COMPLETED, T0 + 1, result=3))
    waiters._on_event(events.JOB_TERMINAL, {"job": job})
    assert [(a["rid"], a["job"]["state"]) for a in sent] == [(7, states.COMPLETED)]
    clock.advance(120)  # its timer was cancelled: answered once
    assert len(sent) == 1


def test_a_get_parked_on_a_job_deleted_meanwhile_gets_unknown_job_not_an_empty_reply():
    store = MemoryStore()
    job = make_job(1)
    store.add([job])
    store.save(finish(job, states.DISCARDED, T0 + 1))
    assert store.delete(job.id)  # after the dispatcher found it (not ended) and before parking
    waiters, clock, sent = parked(store)
    waiters.wait(job.id, b"peer", 8, 60.0)
    assert [(a["type"], a["rid"], a["code"]) for a in sent] == [("error", 8, "unknown_job")]
    clock.advance(120)
    assert len(sent) == 1
