"""Job and worker states (PROTOCOL.md section 5), and the worker lifecycle as a table.

The job lifecycle's table and events live in actors/lifecycle.py. A transition missing from a
table raises, so an impossible move is a loud bug, not a silently corrupted job.
"""

from __future__ import annotations

from transport.jobspec import JOB_STATES

DEFERRED, SCHEDULED, AVAILABLE, ACTIVE, RETRYABLE, COMPLETED, DISCARDED, CANCELLED = JOB_STATES
TERMINAL_STATES = frozenset({COMPLETED, DISCARDED, CANCELLED})
WAITING_STATES = frozenset({SCHEDULED, AVAILABLE, RETRYABLE})

RUNNING = "running"
QUIET = "quiet"
TERMINATE = "terminate"
TERMINATED = "terminated"

WORKER_TRANSITIONS: dict[str, frozenset[str]] = {
    RUNNING: frozenset({RUNNING, QUIET, TERMINATE, TERMINATED}),
    QUIET: frozenset({RUNNING, QUIET, TERMINATE, TERMINATED}),
    TERMINATE: frozenset({TERMINATE, TERMINATED}),
    TERMINATED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A state change the lifecycle table does not allow."""


def next_worker_state(current: str, new: str) -> str:
    """The worker state after asking for `new`; terminate is sticky (nothing undoes it)."""
    if current == TERMINATE and new != TERMINATED:
        return TERMINATE
    if new not in WORKER_TRANSITIONS[current]:
        raise IllegalTransition(f"worker cannot go from {current} to {new}")
    return new
