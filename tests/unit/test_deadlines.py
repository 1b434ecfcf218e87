"""The JobSpec fields `expires_at` and `run_timeout` (docs/PROTOCOL.md extensions "Expiry" and
"Run timeout"): validated, kept by every store, never handed out once expired (a claim, a
promotion or the reaper's round discards the job, the round for the price of the jobs that
expired), and an attempt's reservation held to its run timeout however often it beats."""

from __future__ import annotations

import gc
import math
import random
import sqlite3
from typing import Any

import msgpack
import pytest

from actors import events, lifecycle, states
from actors.coordinator_settings import CoordinatorSettings
from actors.jobs import Job
from actors.leases import Leases, run_ends, run_out
from actors.mail import Claimed, Hold
from actors.queue import EXPIRY_SLACK, QueueCore
from actors.routing import WorkerProfile
from actors.sessions import Session
from actors.store import record
from actors.store.postgres import SCHEMA_VERSION as PG_SCHEMA_VERSION
from tests.unit.counting import CountedSeq, CountedTime
from tests.unit.store_jobs import StoreKinds, make
from tests.unit.test_queue_limits import limited, log_bound
from tests.unit.test_queue_limits import queue as limited_queue
from tests.unit.test_supervisor_core import PEER, claims, make_core, register
from tests.unit.test_validation import parse, request
from transport import messages as m
from transport.errors import BadRequest
from transport.jobspec import JobSpec, RetryPolicy

NOW = 1_700_000_000.0
ANY = WorkerProfile.build("w", ("q",), (), None)


def spec(**fields: Any) -> JobSpec:
    message = parse(request("enqueue", job={"type": "t", **fields}))
    assert isinstance(message, m.Enqueue)
    return message.specs[0]


def job(job_id: str, seq: int, *, state: str = states.AVAILABLE, **fields: Any) -> Job:
    """A job of queue q as the queue receives it, in `state`."""
    built = Job.from_spec(JobSpec(type="t", queue="q", **fields), job_id, NOW, seq)
    built.state = state
    return built


def ids(jobs: list[Job]) -> list[str]:
    return [j.id for j in jobs]


# -- validation -----------------------------------------------------------------------------


def test_both_fields_are_optional_numbers_kept_as_floats():
    assert (spec().expires_at, spec().run_timeout) == (None, None)
    assert spec(expires_at=None, run_timeout=None) == spec()  # a null field is absent
    given = spec(expires_at=int(NOW), run_timeout=5)
    assert (given.expires_at, given.run_timeout) == (NOW, 5.0)
    assert type(given.expires_at) is float and type(given.run_timeout) is float
    assert spec(expires_at=-1.5).expires_at == -1.5  # long past: accepted, then discarded


@pytest.mark.parametrize("bad", [True, "soon", [NOW], {"at": NOW}, math.nan, math.inf, -math.inf])
def test_an_expires_at_that_is_not_a_finite_number_is_refused_by_name(bad):
    with pytest.raises(BadRequest, match="field 'expires_at' must be a finite number"):
        spec(expires_at=bad)


@pytest.mark.parametrize("bad", [0, 0.0, -1, -0.5, True, "5", math.nan, math.inf, [5]])
def test_a_run_timeout_that_is_not_a_finite_number_above_zero_is_refused_by_name(bad):
    with pytest.raises(BadRequest, match="field 'run_timeout' must be"):
        spec(run_timeout=bad)


def test_a_batch_names_the_spec_with_the_bad_field():
    body = request("enqueue", jobs=[{"type": "t"}, {"type": "t", "run_timeout": -1}])
    body.pop("job", None)
    with pytest.raises(BadRequest, match=r"jobs\[1\]: field 'run_timeout' must be > 0"):
        parse(body)


def test_a_workflow_step_may_carry_both():
    step = {"type": "t", "expires_at": NOW + 60, "run_timeout": 9}
    message = parse(request("workflow", workflow={"chain": [{"type": "a"}, step]}))
    assert isinstance(message, m.WorkflowSubmit)
    assert (message.steps[1].spec.expires_at, message.steps[1].spec.run_timeout) == (NOW + 60, 9)


def test_the_job_map_carries_each_field_only_when_set():
    plain = Job.from_spec(spec(), "j", NOW, 1).to_wire()
    assert "expires_at" not in plain and "run_timeout" not in plain
    wire = Job.from_spec(spec(expires_at=NOW + 60, run_timeout=9), "j", NOW, 1).to_wire()
    assert (wire["expires_at"], wire["run_timeout"]) == (NOW + 60, 9.0)
    assert Job.from_wire(wire, 1).expires_at == NOW + 60


# -- the lifecycle --------------------------------------------------------------------------


def test_an_expired_job_is_discarded_with_an_error_of_type_expired():
    waiting = job("j", 1, expires_at=NOW + 5)
    lifecycle.expire(waiting, NOW + 6)
    assert waiting.state == states.DISCARDED and waiting.completed_at == NOW + 6
    message = f"expired unstarted at {NOW + 5}"
    assert waiting.errors == ({"attempt": 0, "type": "expired", "message": message, "at": NOW + 6},)


def test_a_retryable_job_that_expires_says_which_attempt_never_started():
    failed = job("j", 1, expires_at=NOW + 5, max_attempts=5)
    lifecycle.activate(failed, NOW, "w", 30.0)
    lifecycle.fail(failed, NOW + 1, m.ErrorInfo("Boom", "no"), random.Random(0))
    lifecycle.expire(failed, NOW + 6)
    assert failed.state == states.DISCARDED and failed.next_attempt_at is None
    assert failed.errors[-1]["message"] == f"expired at {NOW + 5} before attempt 2 started"


def test_an_active_or_ended_job_cannot_expire():
    running = job("j", 1, expires_at=NOW + 5)
    lifecycle.activate(running, NOW, "w", 30.0)
    with pytest.raises(states.IllegalTransition):
        lifecycle.expire(running, NOW + 6)  # it started in time: it runs on


def test_a_revived_expired_job_loses_its_expires_at_and_runs():
    dead = job("j", 1, expires_at=NOW + 5)
    lifecycle.expire(dead, NOW + 6)
    lifecycle.revive(dead)
    assert dead.state == states.AVAILABLE and dead.expires_at is None


# -- leases: the run timeout ----------------------------------------------------------------


def active_with(run_timeout: float | None, started: float = NOW) -> tuple[Leases, Session, Job]:
    leases = Leases(30.0, lambda _: None)
    session = Session("w", PEER, "host", 1, started, started)
    held = job("j", 1, run_timeout=run_timeout)
    lifecycle.activate(held, started, "w", leases.length(held))
    leases.hold(session, held)
    return leases, session, held


def test_beats_renew_a_lease_up_to_the_end_of_the_run_timeout_and_no_further():
    leases, _, held = active_with(45.0)
    assert held.deadline == NOW + 30 and run_ends(held) == NOW + 45 and not run_out(held)
    leases.renew(held, NOW + 10)
    assert held.deadline == NOW + 40
    leases.renew(held, NOW + 20)
    assert held.deadline == NOW + 45 and run_out(held)
    leases.renew(held, NOW + 44)
    assert held.deadline == NOW + 45
    assert [j.id for _, j in leases.expired(NOW + 44.9)] == []
    assert [j.id for _, j in leases.expired(NOW + 45)] == ["j"]


def test_a_job_without_a_run_timeout_is_renewed_as_before():
    leases, _, held = active_with(None)
    leases.renew(held, NOW + 1000)
    assert held.deadline == NOW + 1030 and run_ends(held) is None and not run_out(held)


def test_a_stall_credit_stops_at_the_end_of_the_run_timeout():
    leases, _, held = active_with(40.0)
    leases.credit(5.0)
    assert held.deadline == NOW + 35  # the lease came first: credited
    leases.credit(20.0)
    assert held.deadline == NOW + 40  # the job did run all that time


def _worker_running(run_timeout: float, max_attempts: int = 3):
    """A SupervisorCore (visibility 30 s) whose worker fetched one job of queue a at NOW."""
    core, queues, sent = make_core(CoordinatorSettings(visibility_timeout=30.0))
    core.handle(NOW, PEER, m.Hello(1, "worker", "host", 1))
    worker_id = sent[-1]["worker_id"]
    core.handle(NOW, PEER, register(worker_id, ("a",), 1))
    core.handle(NOW, PEER, m.Fetch(3, worker_id, 1, None, 0.0))
    running = Job.from_spec(
        JobSpec(type="t", queue="a", run_timeout=run_timeout, max_attempts=max_attempts),
        "job-1",
        NOW,
        1,
    )
    core.store.add([running])
    core.claimed(NOW, Claimed(claims(queues, "a")[-1].token, worker_id, "a", [running]))
    return core, queues, worker_id, running


def test_a_beating_worker_loses_its_job_when_the_run_timeout_passes_as_a_timeout():
    core, queues, worker_id, running = _worker_running(45.0)
    for second in range(1, 45):  # a reaper round each second, a beat every 10 s
        if second % 10 == 0:
            core.handle(NOW + second, PEER, m.Beat(second, worker_id, "running", ("job-1",)))
        core.tick(NOW + second)
    assert running.state == states.ACTIVE and running.deadline == NOW + 45  # not NOW + 70
    core.tick(NOW + 45)
    assert running.state == states.AVAILABLE and running.worker_id is None
    assert running.errors[-1]["type"] == "timeout"
    assert running.errors[-1]["message"] == f"run timeout of 45.0 s passed (started at {NOW})"
    assert [j.id for message in queues.queues["a"].told if isinstance(message, Hold)
            for j in message.jobs] == ["job-1"]  # fmt: skip
    reasons = [p["reason"] for name, p in queues.events if name == events.JOB_RECOVERED]
    assert reasons == ["timeout"]
    assert core.store.get("job-1")["state"] == states.AVAILABLE


def test_the_last_attempt_past_its_run_timeout_is_discarded_as_a_timeout():
    core, queues, worker_id, running = _worker_running(10.0, max_attempts=1)
    core.handle(NOW + 5, PEER, m.Beat(5, worker_id, "running", ("job-1",)))
    core.tick(NOW + 10)
    assert running.state == states.DISCARDED and running.errors[-1]["type"] == "timeout"
    assert [name for name, _ in queues.events].count(events.JOB_TERMINAL) == 1


def test_a_lease_that_expires_first_says_so_not_the_run_timeout():
    core, _, _, running = _worker_running(3600.0)
    core.tick(NOW + 30)
    assert running.errors[-1]["message"] == "reservation expired after 30.0 s"


# -- the queue: claims, promotions and the reaper's round ---------------------------------------


def make_queue() -> QueueCore:
    core = QueueCore("q")
    core.update_workers((ANY,))
    return core


def test_a_claim_discards_the_expired_jobs_it_meets_and_hands_out_the_next_ones():
    core = make_queue()
    for n in range(6):
        core.add(job(f"j{n}", n + 1, expires_at=NOW + n) if n < 3 else job(f"j{n}", n + 1))
    assert ids(core.claim(ANY, 2, NOW + 1.5)) == ["j2", "j3"]  # j0 and j1 had expired
    discarded = core.take_expired()
    assert ids(discarded) == ["j0", "j1"] and core.take_expired() == []
    assert {j.state for j in discarded} == {states.DISCARDED}
    assert [j.errors[-1]["type"] for j in discarded] == ["expired", "expired"]
    assert len(core) == 2 and "j0" not in core


def test_a_claim_without_the_time_hands_out_as_before():
    core = make_queue()
    core.add(job("j0", 1, expires_at=NOW))
    assert ids(core.claim(ANY, 1)) == ["j0"] and core.take_expired() == []


def test_the_reaper_round_discards_every_waiting_job_whose_expires_at_came():
    core = make_queue()
    core.add(job("soon", 1, expires_at=NOW + 5))
    core.add(job("later", 2, expires_at=NOW + 50))
    core.add(job("never", 3))
    core.add(job("scheduled", 4, state=states.SCHEDULED, scheduled_at=NOW + 100, expires_at=NOW))
    retrying = job("retrying", 5, state=states.RETRYABLE, expires_at=NOW + 1)
    retrying.attempt, retrying.next_attempt_at = 1, NOW + 100
    core.add(retrying)
    core.expire(NOW + 4.9)
    assert ids(core.take_expired()) == ["scheduled", "retrying"]
    core.expire(NOW + 5)
    assert ids(core.take_expired()) == ["soon"]
    assert ids(core.claim(ANY, 10, NOW + 5)) == ["later", "never"]
    assert core.promote(NOW + 100) == [] and len(core) == 0  # their timed entries are stale


def test_a_due_job_whose_expires_at_came_is_discarded_instead_of_promoted():
    core = make_queue()
    core.add(job("late", 1, state=states.SCHEDULED, scheduled_at=NOW + 10, expires_at=NOW + 5))
    core.add(job("fine", 2, state=states.SCHEDULED, scheduled_at=NOW + 10, expires_at=NOW + 50))
    assert ids(core.promote(NOW + 10)) == ["fine"]  # promoted without a round first
    [late] = core.take_expired()
    assert late.id == "late" and late.state == states.DISCARDED
    assert late.errors[-1]["message"] == f"expired unstarted at {NOW + 5}"
    assert ids(core.claim(ANY, 5, NOW + 10)) == ["fine"]


def test_a_cancelled_or_claimed_job_is_not_expired_later():
    core = make_queue()
    core.add(job("claimed", 1, expires_at=NOW + 5))
    core.add(job("cancelled", 2, expires_at=NOW + 5))
    assert ids(core.claim(ANY, 1, NOW)) == ["claimed"]
    assert core.remove("cancelled") is not None
    core.expire(NOW + 10)
    assert core.take_expired() == [] and core.next_expiry() is None


def test_an_expired_job_under_a_limit_gives_its_place_to_a_held_one():
    core = limited_queue()  # at most two `sync` jobs of a key active
    first = limited("a1", 1)
    first.expires_at = NOW + 1
    core.add(first)
    core.add(limited("a2", 2))
    core.add(limited("a3", 3))  # held: a1 and a2 are lined up
    assert core.limited() == 1
    assert ids(core.claim(ANY, 5, NOW + 1)) == ["a2", "a3"]  # a1 expired: a3 took its place
    assert ids(core.take_expired()) == ["a1"] and core.limited() == 0
    held = limited("a4", 4)
    held.expires_at = NOW + 2
    core.add(held)  # the key is full: held
    core.expire(NOW + 2)
    assert ids(core.take_expired()) == ["a4"] and core.limited() == 0 and len(core) == 0


def test_stale_expiry_entries_never_outnumber_the_live_ones_for_long():
    core = make_queue()
    for n in range(10_000):
        core.add(job(f"j{n}", n + 1, expires_at=NOW + 3600))
    assert len(core._expiry) == 10_000
    assert len(core.claim(ANY, 9_990, NOW)) == 9_990  # handed out long before they expire
    assert len(core._expiry) <= 2 * 10 + EXPIRY_SLACK
    core.expire(NOW + 3600)
    assert ids(core.take_expired()) == [f"j{n}" for n in range(9_990, 10_000)]


@pytest.mark.parametrize(
    "count", [100_000, pytest.param(1_000_000, marks=pytest.mark.slow)], ids=["100k", "1m"]
)
def test_a_reaper_round_over_a_million_jobs_costs_only_the_jobs_that_expire(count):
    """Every tenth job of a million expires, one a second; a round pops the ones due and a
    claim after it finds the next live job, each in logarithmic work. Jobs without an
    expires_at are never in the expiry heap. (A tenth of the size by default; the million in
    the `slow` tier.)"""
    core = make_queue()
    plain = JobSpec(type="t", queue="q")
    gc.disable()
    try:
        for n in range(count):
            queued = Job.from_spec(plain, str(n), NOW, CountedSeq(n + 1))
            if n % 10 == 0:
                queued.expires_at = CountedTime(NOW + 1 + n // 10)
            core.add(queued)
    finally:
        gc.enable()
    assert len(core._expiry) == count // 10
    CountedTime.comparisons = 0
    core.expire(NOW)  # nothing due: one look at the heap's head
    assert CountedTime.comparisons == 0 and core.take_expired() == []
    due = 50
    CountedTime.comparisons = CountedSeq.comparisons = 0
    core.expire(NOW + due)
    expired = core.take_expired()
    assert ids(expired) == [str(10 * n) for n in range(due)]
    work = CountedTime.comparisons + CountedSeq.comparisons
    assert work <= due * log_bound(count), f"{work} steps to expire {due} jobs"
    CountedSeq.comparisons = 0
    assert ids(core.claim(ANY, 1, NOW + due)) == ["1"]  # past the expired head, at once
    assert CountedSeq.comparisons <= 2 * log_bound(count)
    assert len(core) == count - due - 1


def test_jobs_without_an_expires_at_never_touch_the_expiry_heap():
    core = make_queue()
    for n in range(1000):
        core.add(job(f"j{n}", n + 1))
    assert core.next_expiry() is None
    assert len(core.claim(ANY, 1000, NOW)) == 1000
    core.expire(NOW + 10**9)
    assert core.take_expired() == [] and core._expiring == 0


# -- every store keeps them ------------------------------------------------------------------


def deadlined(n: int, **spec: Any) -> Job:
    return make(n, expires_at=NOW + 600, run_timeout=30, **spec)


def test_every_store_keeps_both_fields_through_saves(stores: StoreKinds):
    store = stores.open()
    waiting, plain = deadlined(1), make(2)
    store.add([waiting, plain])
    assert store.get(waiting.id)["expires_at"] == NOW + 600
    assert store.get(waiting.id)["run_timeout"] == 30.0
    assert "expires_at" not in store.get(plain.id)
    lifecycle.activate(waiting, NOW + 1, "w-1", 10.0)
    store.save(waiting)
    assert store.get(waiting.id) == waiting.to_wire()
    lifecycle.recover(waiting, NOW + 31, "timeout", "run timeout")
    lifecycle.expire(waiting, NOW + 700)
    store.save(waiting)
    stored = store.get(waiting.id)
    assert stored["state"] == states.DISCARDED and stored["errors"][-1]["type"] == "expired"
    assert stored["expires_at"] == NOW + 600
    found = {j.id: j for j in (entry.job(0) for entry in store.unfinished())}
    assert set(found) == {plain.id}


def test_both_fields_outlive_a_reopen(durable: StoreKinds):
    store = durable.open()
    waiting = deadlined(1)
    running = deadlined(2)
    lifecycle.activate(running, NOW + 1, "w-1", 10.0)
    store.add([waiting, running])
    store.close()
    reopened = durable.open()
    assert reopened.get(waiting.id) == waiting.to_wire()
    assert reopened.get(running.id) == running.to_wire()
    found = {j.id: j for j in (entry.job(0) for entry in reopened.unfinished())}
    assert (found[waiting.id].expires_at, found[waiting.id].run_timeout) == (NOW + 600, 30.0)
    assert found[running.id].run_timeout == 30.0


def _as_written_before_deadlines(kinds: StoreKinds) -> None:
    """Rewrite every row as the corral before this extension left it: records one field
    shorter (nothing ended with deadlines) and the schema version before them (SQLite 6,
    PostgreSQL 7)."""
    if kinds.kind == "sqlite":
        connection = sqlite3.connect(kinds.location)
        with connection:
            rows = connection.execute("SELECT id, wire FROM jobs").fetchall()
            for job_id, wire in rows:
                connection.execute("UPDATE jobs SET wire = ? WHERE id = ?", (_older(wire), job_id))
            connection.execute("PRAGMA user_version=6")
        connection.close()
        return
    import psycopg

    with psycopg.connect(kinds.location, autocommit=True) as connection:
        rows = connection.execute("SELECT id, wire FROM jobs").fetchall()
        for job_id, wire in rows:
            connection.execute("UPDATE jobs SET wire = %s WHERE id = %s", [_older(wire), job_id])
        connection.execute("DROP TABLE jobs_deleted")  # migration 9 (extension "Delete")
        connection.execute("UPDATE schema_version SET version = 7")


def _older(wire: bytes) -> bytes:
    fields = msgpack.unpackb(wire)
    if len(fields) == len(record.FIELDS):
        assert fields.pop() is None  # nothing older had deadlines
    return msgpack.packb(fields, use_bin_type=True)


def _schema_version(kinds: StoreKinds) -> int:
    if kinds.kind == "sqlite":
        connection = sqlite3.connect(kinds.location)
        try:
            return connection.execute("PRAGMA user_version").fetchone()[0]
        finally:
            connection.close()
    import psycopg

    with psycopg.connect(kinds.location) as connection:
        return connection.execute("SELECT version FROM schema_version").fetchone()[0]


def test_a_store_of_the_schema_before_deadlines_still_opens_and_is_brought_up_to_date(
    durable: StoreKinds,
):
    store = durable.open()
    rich = make(1, priority=3, unique_key="u", depends_on=["job-00009"])  # a full record
    retried = make(2, max_attempts=4, retry={"jitter": False})
    lifecycle.activate(retried, NOW + 1, "w-1", 30.0)
    lifecycle.fail(retried, NOW + 2, m.ErrorInfo("Boom", "no"), random.Random(0))
    plain = make(3)
    store.add([rich, retried, plain])
    store.close()
    _as_written_before_deadlines(durable)

    reopened = durable.open()
    assert _schema_version(durable) == (7 if durable.kind == "sqlite" else PG_SCHEMA_VERSION)
    for old in (rich, retried, plain):
        assert reopened.get(old.id) == old.to_wire()
    later = deadlined(4)
    reopened.add([later])
    assert reopened.get(later.id)["expires_at"] == NOW + 600


def test_a_retry_policy_and_deadlines_travel_together_in_a_record():
    timed = make(1, retry={"backoff": "linear"}, expires_at=NOW + 5, run_timeout=1.5)
    rebuilt = record.job(record.pack(timed), 1)
    assert rebuilt.retry == RetryPolicy(backoff="linear")
    assert (rebuilt.expires_at, rebuilt.run_timeout) == (NOW + 5, 1.5)
