"""The job lifecycle (PROTOCOL.md sections 5 and 6): one table of named events, and one function
per event that makes the move and sets every field that goes with it.

Callers never set `state` themselves: the queue promotes, cancels and expires, the supervisor
activates, completes, fails, recovers and cancels, the dead set revives, the FlowActor releases,
abandons and expires. A (state, event) pair missing from `TABLE` raises `IllegalTransition`
before any field changes, so an impossible move is a loud bug, not a silently corrupted job.
"""

from __future__ import annotations

import random
from typing import Any, Protocol

from actors.jobs import Job, retry_delay
from actors.states import (
    ACTIVE,
    AVAILABLE,
    CANCELLED,
    COMPLETED,
    DEFERRED,
    DISCARDED,
    RETRYABLE,
    SCHEDULED,
    WAITING_STATES,
    IllegalTransition,
)

ACTIVATE = "activate"  # handed to a worker by a fetch
COMPLETE = "complete"  # acked
RETRY = "retry"  # failed, attempts left and retryable: back after the backoff
DISCARD = "discard"  # failed for good (attempts exhausted or not retryable)
RECOVER = "recover"  # a lost or expired reservation: back to available at once
CANCEL = "cancel"  # a client's cancel
PROMOTE = "promote"  # scheduled or retry time reached
REVIVE = "revive"  # a discarded job retried by hand (the dead set)
RELEASE = "release"  # every job a deferred one waits for has ended (actors.flows)
RELEASE_LATER = "release_later"  # the same, for a job whose scheduled_at is still ahead
EXPIRE = "expire"  # its expires_at came before its next attempt started: discarded unstarted
EVENTS = (
    ACTIVATE,
    COMPLETE,
    RETRY,
    DISCARD,
    RECOVER,
    CANCEL,
    PROMOTE,
    REVIVE,
    RELEASE,
    RELEASE_LATER,
    EXPIRE,
)

TABLE: dict[tuple[str, str], str] = {
    (AVAILABLE, ACTIVATE): ACTIVE,
    (ACTIVE, COMPLETE): COMPLETED,
    (ACTIVE, RETRY): RETRYABLE,
    (ACTIVE, DISCARD): DISCARDED,
    (ACTIVE, RECOVER): AVAILABLE,
    (SCHEDULED, PROMOTE): AVAILABLE,
    (RETRYABLE, PROMOTE): AVAILABLE,
    (DISCARDED, REVIVE): AVAILABLE,
    (DEFERRED, RELEASE): AVAILABLE,
    (DEFERRED, RELEASE_LATER): SCHEDULED,
    **{(state, CANCEL): CANCELLED for state in (*sorted(WAITING_STATES), DEFERRED, ACTIVE)},
    **{(state, EXPIRE): DISCARDED for state in (*sorted(WAITING_STATES), DEFERRED)},
}


class Failure(Protocol):
    """What a failed attempt reports (transport.messages.ErrorInfo)."""

    type: str
    message: str
    retryable: bool
    backtrace: tuple[str, ...]
    requeue: bool


def _move(job: Job, event: str) -> None:
    new = TABLE.get((job.state, event))
    if new is None:
        raise IllegalTransition(f"job {job.id} cannot {event} from {job.state}")
    job.state = new


def activate(job: Job, now: float, worker_id: str, lease: float) -> None:
    """A new attempt starts under `worker_id`, reserved until now + `lease`, or until its run
    timeout passes if that comes first (as actors.leases renews it)."""
    _move(job, ACTIVATE)
    job.attempt += 1
    job.worker_id = worker_id
    job.started_at = now
    run_timeout = job.run_timeout
    job.deadline = now + lease if run_timeout is None else now + min(lease, run_timeout)


def complete(job: Job, now: float, result: Any) -> None:
    """The attempt succeeded; `result` is kept."""
    _move(job, COMPLETE)
    job.deadline = None
    job.result = result
    job.completed_at = now


def fail(job: Job, now: float, error: Failure, rng: random.Random) -> None:
    """The attempt failed: retry after the backoff (PROTOCOL.md section 5) or discard. A
    retryable failure that asks to be requeued (a worker letting a job go as it shuts down)
    is available again at once, as a recovered one is."""
    if error.retryable and error.requeue:
        recover(job, now, error.type, error.message)
    elif error.retryable and job.attempt < job.max_attempts:
        _move(job, RETRY)
        job.deadline = None
        job.record_error(error.type, error.message, now, error.backtrace)
        job.next_attempt_at = now + retry_delay(job.retry, job.attempt, rng)
        job.errors[-1]["retry_at"] = job.next_attempt_at  # the delay chosen, kept for readers
    else:
        _discard(job, now, error.type, error.message, error.backtrace)


def recover(job: Job, now: float, kind: str, message: str) -> None:
    """A lost or expired reservation: a failed attempt of error type `kind`, available again at
    once (no retry delay), or discarded when the attempts are exhausted."""
    if job.attempt >= job.max_attempts:
        _discard(job, now, kind, message)
        return
    _move(job, RECOVER)
    job.deadline = None
    job.record_error(kind, message, now)
    job.worker_id = None


def _discard(
    job: Job, now: float, kind: str, message: str, backtrace: tuple[str, ...] = ()
) -> None:
    _move(job, DISCARD)
    job.deadline = None
    job.record_error(kind, message, now, backtrace)
    job.completed_at = now


def expire(job: Job, now: float) -> None:
    """Its `expires_at` came while it waited for its next attempt (extension "Expiry"):
    discarded with an error of type `expired`, the attempt never started."""
    _move(job, EXPIRE)
    job.next_attempt_at = None
    if job.attempt:
        why = f"expired at {job.expires_at} before attempt {job.attempt + 1} started"
    else:
        why = f"expired unstarted at {job.expires_at}"
    job.record_error("expired", why, now)
    job.completed_at = now


def cancel(job: Job, now: float) -> None:
    """A client cancelled the job, waiting or active."""
    _move(job, CANCEL)
    job.completed_at = now
    job.deadline = None


def release(job: Job, now: float, results: tuple[Any, ...] | None) -> None:
    """The jobs a deferred one waits for have ended: it goes to its queue, with `results` (its
    parents' results, when it takes them) as its last argument."""
    due_later = job.scheduled_at is not None and job.scheduled_at > now
    _move(job, RELEASE_LATER if due_later else RELEASE)
    if results is not None:
        job.args = (*job.args, results[0] if len(results) == 1 else list(results))


def abandon(job: Job, now: float, kind: str, message: str) -> None:
    """A deferred job that cannot go on: a job it waits for failed and its policy is to give
    up (`parent_failed`), or its parents' results are too large to pass (`too_large`)."""
    _move(job, CANCEL)
    job.record_error(kind, message, now)
    job.completed_at = now


def promote(job: Job) -> None:
    """A scheduled or retryable job is due."""
    _move(job, PROMOTE)
    job.next_attempt_at = None


def revive(job: Job) -> None:
    """A discarded job retried by hand: one more full round of attempts, its history kept.

    `attempt` keeps counting (never reset) so acks from any earlier attempt stay fenced. Its
    `expires_at` goes: the operator asks for it to run now, and an expired job kept it would be
    discarded again at once.
    """
    _move(job, REVIVE)
    job.max_attempts = job.attempt + job.max_attempts
    job.completed_at = job.worker_id = job.expires_at = None
