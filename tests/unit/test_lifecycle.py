"""The job lifecycle (actors/lifecycle.py, PROTOCOL.md sections 5 and 6): every (state, event)
pair of the table either makes its move with exactly its fields, or raises and changes nothing."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any

import pytest

from actors import lifecycle, states
from actors.jobs import Job, retry_delay
from transport.jobspec import JobSpec, RetryPolicy
from transport.messages import ErrorInfo

NOW = 1_700_000_000.0
LATER = NOW + 50.0
RETRY = RetryPolicy(initial_interval=2.0, jitter=False)
BOOM = ErrorInfo("Boom", "it broke", backtrace=("frame 1",))
FATAL = ErrorInfo("Fatal", "never again", retryable=False)


def job_in(state: str) -> Job:
    """A job that reached `state` the usual way: attempt 1 ran under worker w-1 where it had to.
    It expires at LATER (its expires_at goes with every state; only waiting ones expire)."""
    spec = JobSpec(type="t", max_attempts=2, retry=RETRY, expires_at=LATER)
    job = Job.from_spec(spec, "job-1", NOW, seq=1)
    job.state = state
    if state == states.DEFERRED:  # waits for its parents, then is due at LATER + 10
        job.scheduled_at = LATER + 10
    elif state != states.SCHEDULED and state != states.AVAILABLE:
        job.attempt, job.worker_id, job.started_at = 1, "w-1", NOW + 1
    if state == states.ACTIVE:
        job.deadline = NOW + 31
    if state == states.RETRYABLE:
        job.next_attempt_at = NOW + 2
    if state in states.TERMINAL_STATES:
        job.completed_at = NOW + 3
    return job


# Each event applied with arguments that choose it (fail and recover choose by rule).
APPLY: dict[str, Callable[[Job], None]] = {
    lifecycle.ACTIVATE: lambda job: lifecycle.activate(job, LATER, "w-2", 30.0),
    lifecycle.COMPLETE: lambda job: lifecycle.complete(job, LATER, {"ok": 1}),
    lifecycle.RETRY: lambda job: lifecycle.fail(job, LATER, BOOM, random.Random(0)),
    lifecycle.DISCARD: lambda job: lifecycle.fail(job, LATER, FATAL, random.Random(0)),
    lifecycle.RECOVER: lambda job: lifecycle.recover(job, LATER, "worker_lost", "gone"),
    lifecycle.CANCEL: lambda job: lifecycle.cancel(job, LATER),
    lifecycle.PROMOTE: lifecycle.promote,
    lifecycle.REVIVE: lifecycle.revive,
    lifecycle.RELEASE: lambda job: lifecycle.release(job, LATER + 20, ({"r": 1},)),
    lifecycle.RELEASE_LATER: lambda job: lifecycle.release(job, LATER, None),
    lifecycle.EXPIRE: lambda job: lifecycle.expire(job, LATER),
}


def error(info: ErrorInfo, attempt: int = 1) -> dict[str, Any]:
    entry = {"attempt": attempt, "type": info.type, "message": info.message, "at": LATER}
    if info.backtrace:
        entry["backtrace"] = list(info.backtrace)
    return entry


def expected_fields(before: Job, event: str) -> dict[str, Any]:
    """The fields (besides state) each event sets, from the job as it was."""
    if event == lifecycle.ACTIVATE:
        return {"attempt": 1, "worker_id": "w-2", "started_at": LATER, "deadline": LATER + 30}
    if event == lifecycle.COMPLETE:
        return {"deadline": None, "result": {"ok": 1}, "completed_at": LATER}
    if event == lifecycle.RETRY:
        retry_at = LATER + retry_delay(RETRY, 1, random.Random(0))
        failed = {**error(BOOM), "retry_at": retry_at}  # the delay chosen, for readers
        return {"deadline": None, "errors": (failed,), "next_attempt_at": retry_at}
    if event == lifecycle.DISCARD:
        return {"deadline": None, "errors": (error(FATAL),), "completed_at": LATER}
    if event == lifecycle.RECOVER:
        lost = ErrorInfo("worker_lost", "gone")
        return {"deadline": None, "errors": (error(lost),), "worker_id": None}
    if event == lifecycle.CANCEL:
        return {"completed_at": LATER, "deadline": None}
    if event == lifecycle.PROMOTE:
        return {"next_attempt_at": None}
    if event == lifecycle.RELEASE:  # one parent: its result itself is the last argument
        return {"args": (*before.args, {"r": 1})}
    if event == lifecycle.RELEASE_LATER:
        return {}
    if event == lifecycle.EXPIRE:
        why = (
            f"expired at {LATER} before attempt 2 started"
            if before.attempt
            else f"expired unstarted at {LATER}"
        )
        expired = ErrorInfo("expired", why)
        return {
            "next_attempt_at": None,
            "errors": (*before.errors, error(expired, before.attempt)),
            "completed_at": LATER,
        }
    assert event == lifecycle.REVIVE
    return {
        "max_attempts": before.attempt + before.max_attempts,
        "completed_at": None,
        "worker_id": None,
        "expires_at": None,  # a manual retry runs it now: an expired job would go again at once
    }


PAIRS = [(state, event) for state in states.JOB_STATES for event in lifecycle.EVENTS]


@pytest.mark.parametrize(("state", "event"), PAIRS, ids=[f"{s}-{e}" for s, e in PAIRS])
def test_every_state_and_event_either_moves_with_its_fields_or_raises_and_changes_nothing(
    state, event
):
    job = job_in(state)
    before = copy.copy(job)  # fields are replaced, never changed in place
    target = lifecycle.TABLE.get((state, event))
    if target is None:
        with pytest.raises(states.IllegalTransition):
            APPLY[event](job)
        assert job == before
        return
    APPLY[event](job)
    expected = {**expected_fields(before, event), "state": target}
    changed = {
        name: getattr(job, name)
        for name in Job.__slots__
        if getattr(job, name) != getattr(before, name)
    }
    assert {name: getattr(job, name) for name in expected} == expected
    assert set(changed) <= set(expected)  # nothing else moved


def test_the_table_has_exactly_the_protocols_edges():
    edges = {(state, target) for (state, _), target in lifecycle.TABLE.items()}
    assert edges == {
        ("scheduled", "available"),
        ("available", "active"),
        ("active", "completed"),
        ("active", "retryable"),
        ("retryable", "available"),
        ("active", "discarded"),
        ("active", "available"),  # section 6: a lost or expired reservation returns at once
        ("discarded", "available"),  # the dead set's retry by hand
        ("scheduled", "cancelled"),
        ("available", "cancelled"),
        ("active", "cancelled"),
        ("retryable", "cancelled"),
        ("deferred", "available"),  # workflows: every parent ended
        ("deferred", "scheduled"),  # the same, with its scheduled_at still ahead
        ("deferred", "cancelled"),  # a cancel, or a parent's failure under on_failure: cancel
        ("scheduled", "discarded"),  # expires_at came before it started (extension "Expiry")
        ("available", "discarded"),
        ("retryable", "discarded"),  # ... or before its next attempt started
        ("deferred", "discarded"),
    }


def test_a_completed_or_cancelled_job_never_moves_again():
    assert not [key for key in lifecycle.TABLE if key[0] in ("completed", "cancelled")]


@pytest.mark.parametrize("attempt", [2, 3])
def test_a_failure_or_a_lost_reservation_of_the_last_attempt_discards(attempt):
    for end in (
        lambda job: lifecycle.fail(job, LATER, BOOM, random.Random(0)),
        lambda job: lifecycle.recover(job, LATER, "timeout", "expired"),
    ):
        job = job_in(states.ACTIVE)
        job.attempt = attempt
        end(job)
        assert job.state == "discarded" and job.completed_at == LATER
        assert job.worker_id == "w-1" and job.errors[-1]["attempt"] == attempt


def test_an_attempt_with_a_run_timeout_is_reserved_until_it_ends_if_that_comes_first():
    job = Job.from_spec(JobSpec(type="t", run_timeout=12.0), "job-1", NOW, seq=1)
    lifecycle.activate(job, NOW, "w-1", 30.0)
    assert job.deadline == NOW + 12
    long = Job.from_spec(JobSpec(type="t", run_timeout=90.0), "job-2", NOW, seq=2)
    lifecycle.activate(long, NOW, "w-1", 30.0)
    assert long.deadline == NOW + 30  # the lease comes first: beats renew it up to NOW + 90


def test_a_job_walks_the_whole_way_and_an_illegal_event_leaves_it_alone():
    job = Job.from_spec(JobSpec(type="t", scheduled_at=NOW + 5), "job-1", NOW, seq=1)
    lifecycle.promote(job)
    lifecycle.activate(job, NOW + 5, "w-1", 30.0)
    lifecycle.fail(job, NOW + 6, BOOM, random.Random(0))
    lifecycle.promote(job)
    lifecycle.activate(job, NOW + 9, "w-2", 30.0)
    lifecycle.complete(job, NOW + 10, 7)
    assert (job.state, job.attempt, job.worker_id, job.result) == ("completed", 2, "w-2", 7)
    with pytest.raises(states.IllegalTransition):
        lifecycle.cancel(job, NOW + 11)
    assert job.state == "completed" and job.completed_at == NOW + 10
