"""The Store contract, held by every store: memory, SQLite, PostgreSQL (tests/pg.py starts a
private cluster) and the simulation's SharedStore. What every store gives back is what was last
saved; a durable store (SQLite, PostgreSQL) also keeps it across a close or a killed process,
releases a reply only once the change it announces is stored, and shares one commit among many
requests. (A store opened under a lease term lands nothing once another coordinator took the
lease: test_store_fencing.py.)

Store-specific behaviour (memory's footprint, SQLite's files, PostgreSQL's connection and
schema) stays in test_memory_store.py, test_sqlite_store.py and test_postgres_store.py.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import states
from actors.base import Activity
from actors.jobs import Job
from actors.store import record
from actors.store.sqlite import StoreError
from tests.unit.store_jobs import (
    DURABLE,
    T0,
    WAIT_S,
    StoreKinds,
    end,
    finish,
    make,
    make_job,
    nonzero,
    open_kind,
    run,
)
from transport.jobspec import EMPTY_MAP, Flow, JobLimit, Rate

RETENTION_S = 100.0


@pytest.fixture(params=(*DURABLE, "shared"))
def reopenable(request, tmp_path) -> Iterator[StoreKinds]:
    yield from open_kind(request, request.param, tmp_path)


def add_then_call_from_the_writer(store: Any, job: Job, callback: Any) -> None:
    """Hand over `job`, then `callback`, holding the writer's lock so that it cannot commit
    the job in between: the callback then runs on the writer, after that commit."""
    with store._writer._cond:
        store.add([job])
        store.after_commit(callback)


# -- every store ----------------------------------------------------------------------------------


def test_get_gives_the_wire_form_of_the_last_save_and_a_copy_each_time(stores):
    store = stores.open()
    job = make(1, args=[1, 2], route={"gpu": "a100"}, meta={"owner": "ops"})
    store.add([job])
    assert store.get(job.id) == job.to_wire()
    store.save(end(job, states.COMPLETED, T0 + 5, result={"ok": True}))
    got = store.get(job.id)
    assert got == job.to_wire() and got["result"] == {"ok": True}
    got["state"] = "tampered"
    assert store.get(job.id)["state"] == states.COMPLETED
    assert store.get("no-such-job") is None


def test_counts_follow_every_save_per_queue_and_state(stores):
    store = stores.open()
    jobs = [make(n, queue="a" if n % 2 else "b") for n in range(6)]
    store.add(jobs)
    store.save(run(jobs[0], T0))
    store.save(end(jobs[1], states.COMPLETED, T0))
    store.save(end(jobs[3], states.DISCARDED, T0))
    store.save(jobs[3])  # the same state again counts once
    counts = store.counts()
    assert nonzero(counts["a"]) == {"available": 1, "completed": 1, "discarded": 1}
    assert nonzero(counts["b"]) == {"available": 2, "active": 1}


def test_a_duplicate_unique_key_returns_the_holders_wire_form_and_is_not_stored(stores):
    store = stores.open()
    holder = make(1, unique_key="nightly")
    assert store.add([holder]) == [None]
    duplicate = make(2, unique_key="nightly")
    assert store.add([duplicate]) == [holder.to_wire()]
    assert store.get(duplicate.id) is None
    assert store.counts()["default"]["available"] == 1


def test_a_listing_filters_on_queue_state_and_type_and_unpacks_only_what_it_returns(
    stores, monkeypatch
):
    store = stores.open()
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


def test_unfinished_gives_the_non_terminal_jobs_as_compact_jobs(stores):
    store = stores.open()
    jobs = [make(n) for n in range(3)]
    store.add(jobs)
    store.save(run(jobs[1], T0 + 1))
    store.save(end(jobs[2], states.COMPLETED, T0 + 2))
    found = {job.id: job for job in (entry.job(0) for entry in store.unfinished())}
    assert set(found) == {jobs[0].id, jobs[1].id}
    assert found[jobs[1].id].to_wire() == jobs[1].to_wire()
    assert found[jobs[0].id].route is EMPTY_MAP and found[jobs[0].id].args == ()


def test_a_callback_given_when_nothing_is_pending_runs_at_once_in_the_caller(stores):
    store = stores.open()
    ran_in: list[str] = []
    store.after_commit(lambda: ran_in.append(threading.current_thread().name))
    assert ran_in == [threading.current_thread().name]


def test_completed_jobs_are_pruned_after_their_retention_and_discarded_ones_later(stores):
    retention = {"completed_retention_s": 100.0, "discarded_retention_s": 1000.0}
    store = stores.open(**retention)
    jobs = [make_job(n) for n in range(4)]
    store.add(jobs)
    store.save(finish(jobs[0], states.COMPLETED, T0, result=1))
    store.save(finish(jobs[1], states.DISCARDED, T0))
    store.save(finish(jobs[2], states.CANCELLED, T0))

    assert store.prune(T0 + 99) == 0
    assert store.prune(T0 + 100) == 1
    assert store.get(jobs[0].id) is None and store.get(jobs[1].id) is not None
    assert store.counts()["default"][states.COMPLETED] == 0
    assert store.prune(T0 + 999) == 0
    assert store.prune(T0 + 1000) == 2
    assert store.prune(T0 + 10**6) == 0  # jobs not yet terminal are never pruned
    assert store.get(jobs[3].id) is not None
    assert store.counts()["default"] == {**dict.fromkeys(states.JOB_STATES, 0), "available": 1}
    if stores.kind != "memory":
        store.close()
        assert [entry.job(0).id for entry in stores.open(**retention).unfinished()] == [jobs[3].id]
        assert stores.read_back(jobs[0].id) is None and stores.read_back(jobs[1].id) is None


def test_a_discarded_job_retried_by_hand_is_not_pruned_by_its_old_discard_time(stores):
    store = stores.open(completed_retention_s=10.0, discarded_retention_s=10.0)
    job = make_job(1)
    store.add([job])
    store.save(finish(job, states.DISCARDED, T0))
    store.save(finish(job, states.AVAILABLE, None))  # retried: back in a queue
    assert store.prune(T0 + 60) == 0
    store.save(finish(job, states.COMPLETED, T0 + 100))
    assert store.prune(T0 + 109) == 0
    assert store.prune(T0 + 110) == 1


# -- durable stores: SQLite and PostgreSQL --------------------------------------------------------


def test_jobs_states_counts_and_unique_keys_are_the_same_after_close_and_reopen(reopenable):
    durable = reopenable
    store = durable.open()
    jobs = [make_job(n, queue="a" if n % 2 else "b") for n in range(10)]
    jobs[9].unique_key = "nightly-report"
    assert store.add(jobs) == [None] * 10
    store.save(finish(jobs[0], states.COMPLETED, T0 + 50, result={"n": 0}, attempt=1))
    store.save(make_job(1, state=states.ACTIVE, queue="a", attempt=1, worker_id="w-1"))
    store.save(finish(jobs[2], states.DISCARDED, T0 + 60, attempt=3))
    before = {job.id: store.get(job.id) for job in jobs}
    counts = store.counts()
    store.close()

    reopened = durable.open()
    assert {job.id: reopened.get(job.id) for job in jobs} == before
    assert reopened.counts() == counts
    assert reopened.get("job-00000")["result"] == {"n": 0}
    assert reopened.unique_holder("nightly-report") == "job-00009"
    assert [wire["id"] for wire in reopened.list(limit=2)] == ["job-00009", "job-00008"]
    duplicate = reopened.add([make_job(99, unique_key="nightly-report")])
    assert duplicate[0]["id"] == "job-00009"
    unfinished = {job.id: job for job in (entry.job(0) for entry in reopened.unfinished())}
    assert set(unfinished) == {job.id for job in jobs} - {"job-00000", "job-00002"}
    assert unfinished["job-00001"].state == states.ACTIVE
    assert unfinished["job-00001"].worker_id == "w-1"


def test_a_reply_callback_runs_only_after_its_change_is_stored_and_callbacks_keep_order(durable):
    store = durable.open()
    seen: list[tuple[int, str | None]] = []
    done = threading.Event()
    for n in range(200):
        job = make_job(n)
        store.add([job])
        store.after_commit(lambda n=n, job_id=job.id: seen.append((n, durable.read_back(job_id))))
    store.after_commit(done.set)
    assert done.wait(WAIT_S)
    assert [n for n, _ in seen] == list(range(200))
    assert all(state == states.AVAILABLE for _, state in seen)


def test_saves_arriving_during_a_commit_from_many_threads_share_the_next_transaction(durable):
    store = durable.open()
    entered, gate = threading.Event(), threading.Event()

    def hold_the_writer() -> None:
        entered.set()
        gate.wait(WAIT_S)

    add_then_call_from_the_writer(store, make_job(0), hold_the_writer)
    assert entered.wait(WAIT_S)
    replied: list[int] = []

    def requests(first: int) -> None:
        for n in range(first, first + 200):
            store.add([make_job(n)])
            store.after_commit(lambda n=n: replied.append(n))

    threads = [threading.Thread(target=requests, args=(1 + 200 * i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    assert replied == []  # nothing replied before its commit
    gate.set()
    assert store.flush(WAIT_S)
    assert store.commits == 2  # 1,600 requests from 8 threads in one transaction
    assert sorted(replied) == list(range(1, 1601))


def test_free_running_request_reply_traffic_is_grouped_into_far_fewer_commits(durable):
    store = durable.open()
    per_thread, threads_n = 150, 8

    def client(first: int) -> None:
        for n in range(first, first + per_thread):
            job = make_job(n)
            store.add([job])
            job.state = states.ACTIVE
            store.save(job)
            replied = threading.Event()
            store.after_commit(replied.set)
            assert replied.wait(WAIT_S)

    threads = [threading.Thread(target=client, args=(i * per_thread,)) for i in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    requests = per_thread * threads_n
    assert store.counts()["default"][states.ACTIVE] == requests
    assert store.commits < requests / 2, f"{store.commits} commits for {requests} requests"


def test_a_reopened_store_prunes_what_expired_while_it_was_closed(reopenable):
    durable = reopenable
    store = durable.open(completed_retention_s=100.0)
    jobs = [make_job(n) for n in range(3)]
    store.add(jobs)
    for n, job in enumerate(jobs):
        store.save(finish(job, states.COMPLETED, T0 + 100 * n))
    store.close()
    reopened = durable.open(completed_retention_s=100.0)
    assert reopened.prune(T0 + 250) == 2
    assert [reopened.get(job.id) is None for job in jobs] == [True, True, False]


def test_a_second_open_of_a_sqlite_file_in_use_is_refused_as_locked_until_the_first_closes(
    tmp_path,
):
    sqlite = StoreKinds("sqlite", str(tmp_path / "corral.db"))
    first = sqlite.open()
    with pytest.raises(StoreError, match="is locked"):
        sqlite.open()
    first.close()
    sqlite.open().close()


def test_a_change_whose_reply_was_released_survives_the_process_being_killed(durable):
    script = f"""
import os, signal, threading
from tests.unit.store_jobs import StoreKinds, make_job
store = StoreKinds({durable.kind!r}, {durable.location!r}, {durable.term}).open()
jobs = [make_job(n) for n in range(500)]
store.add(jobs)
for job in jobs[:250]:
    job.state = "active"
    store.save(job)
released = threading.Event()
store.after_commit(released.set)
released.wait(10)
print("REPLIED", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=30
    )
    assert "REPLIED" in done.stdout, done.stderr
    store = durable.open()
    assert store.counts()["default"] == {
        **dict.fromkeys(states.JOB_STATES, 0),
        "available": 250,
        "active": 250,
    }


def test_pending_commits_count_as_activity_so_a_simulation_waits_for_their_replies(durable):
    activity = Activity()
    store = durable.open(activity=activity)
    entered, gate = threading.Event(), threading.Event()
    add_then_call_from_the_writer(store, make_job(1), lambda: (entered.set(), gate.wait(WAIT_S)))
    assert entered.wait(WAIT_S)
    assert activity.busy == 1  # committed, but the reply it releases is still on its way
    gate.set()
    assert activity.wait_idle(WAIT_S)


def test_settings_are_kept_replaced_and_dropped_and_outlive_a_reopen(stores):
    store = stores.open()
    assert store.settings() == {}
    store.put_setting("paused:a", b"1")
    store.put_setting("paused:b", b"1")
    store.put_setting("paused:a", b"2")
    store.put_setting("paused:b", None)
    store.put_setting("never:there", None)  # dropping a missing key is no error
    landed = threading.Event()
    store.after_commit(landed.set)
    assert landed.wait(WAIT_S)
    assert store.settings() == {"paused:a": b"2"}
    if stores.kind == "memory":
        return
    store.close()
    assert stores.open().settings() == {"paused:a": b"2"}


def test_a_jobs_limit_is_kept_and_outlives_a_reopen(reopenable):
    """The limit fields are the job's: an adopted active job takes its slot again after a
    restart, and a waiting one is held by the same limit."""
    store = reopenable.open()
    waiting = make_job(1)
    waiting.limit = JobLimit(key="customer-1", concurrency=2, rate=Rate(5, 60.0))
    running = make_job(2, state=states.ACTIVE, attempt=1, worker_id="w-1")
    running.limit = JobLimit(key="customer-1")
    store.add([waiting, running])
    store.close()

    reopened = reopenable.open()
    assert reopened.get(waiting.id)["rate_limit"] == {"count": 5, "per": 60.0}
    unfinished = {job.id: job for job in (entry.job(0) for entry in reopened.unfinished())}
    assert unfinished[waiting.id].limit == waiting.limit
    assert unfinished[running.id].limit == running.limit


def test_a_workflows_steps_and_their_parents_outlive_a_reopen(reopenable):
    """A workflow's steps are found by its request id (its workflow id), each with the jobs it
    waits for, after a restart as before."""
    store = reopenable.open()
    first, second = make_job(1), make_job(2, state=states.DEFERRED)
    first.flow = Flow(workflow=True)
    second.flow = Flow(("job-00001",), "continue", False, workflow=True)
    for job in (first, second):
        job.request_id = "wf-1"
    store.add([first, second])
    made = [job["id"] for job in store.made_by("wf-1")]
    store.close()

    reopened = reopenable.open()
    assert [job["id"] for job in reopened.made_by("wf-1")] == made == ["job-00001", "job-00002"]
    waiting = reopened.get("job-00002")
    assert (waiting["state"], waiting["depends_on"], waiting["workflow_id"]) == (
        "deferred", ["job-00001"], "wf-1",
    )  # fmt: skip
    assert (waiting["on_failure"], waiting["pass_results"]) == ("continue", False)
    unfinished = {job.id: job for job in (entry.job(0) for entry in reopened.unfinished())}
    assert unfinished["job-00002"].flow == second.flow
    assert reopened.made_by("no-such-request") == []
