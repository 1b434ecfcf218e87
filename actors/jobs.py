"""The job record, its wire form, and the retry backoff rule."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from actors import states
from transport.jobspec import (
    DEFAULT_RETRY,
    EMPTY_MAP,
    LINEAR,
    Flow,
    JobLimit,
    JobSpec,
    RetryPolicy,
    shared_name,
)


@dataclass(slots=True)
class Job:
    """One job. Mutated only by the actor that holds it in its current state.

    A million may wait in a queue, so a job holds compact values (see JobSpec): `args` and
    `errors` tuples, `route` and `meta` the shared EMPTY_MAP when empty. `to_wire` turns them
    back into the lists and maps of the wire form.
    """

    id: str
    type: str
    args: tuple[Any, ...]
    queue: str
    priority: int
    scheduled_at: float | None
    max_attempts: int
    retry: RetryPolicy
    timeout: float | None
    route: Mapping[str, str]
    unique_key: str | None
    meta: Mapping[str, Any]
    created_at: float
    seq: int = 0  # enqueue order inside the coordinator: "oldest first" without float ties
    state: str = states.AVAILABLE
    attempt: int = 0
    started_at: float | None = None
    completed_at: float | None = None
    worker_id: str | None = None
    result: Any = None
    next_attempt_at: float | None = None
    deadline: float | None = None  # reservation deadline while active
    errors: tuple[dict[str, Any], ...] = ()
    # The enqueue's request id (docs/PROTOCOL.md extension), kept in the store's record so a
    # retried request finds the job; not part of the Job map.
    request_id: str | None = None
    limit: JobLimit | None = None  # its concurrency key and own limits (actors.limits)
    flow: Flow | None = None  # the jobs it waits for (actors.flows)
    # No attempt starts at or after it (extension "Expiry"); one attempt's longest run from
    # `started_at` (extension "Run timeout"). Two slots cost what one would: the object grows
    # from 240 to 256 bytes either way (pymalloc rounds to 16).
    expires_at: float | None = None
    run_timeout: float | None = None

    @classmethod
    def from_spec(
        cls, spec: JobSpec, job_id: str, now: float, seq: int, request_id: str | None = None
    ) -> Job:
        due_later = spec.scheduled_at is not None and spec.scheduled_at > now
        return cls(
            id=job_id,
            type=spec.type,
            args=spec.args,
            queue=spec.queue,
            priority=spec.priority,
            scheduled_at=spec.scheduled_at,
            max_attempts=spec.max_attempts,
            retry=spec.retry,
            timeout=spec.timeout,
            route=spec.route,
            unique_key=spec.unique_key,
            meta=spec.meta,
            created_at=now,
            seq=seq,
            state=(
                states.DEFERRED
                if spec.flow is not None and spec.flow.depends_on
                else states.SCHEDULED
                if due_later
                else states.AVAILABLE
            ),
            request_id=request_id,
            limit=spec.limit,
            flow=spec.flow,
            expires_at=spec.expires_at,
            run_timeout=spec.run_timeout,
        )

    @property
    def terminal(self) -> bool:
        return self.state in states.TERMINAL_STATES

    def expired(self, now: float) -> bool:
        """True when its `expires_at` has come: no attempt of it may start any more."""
        return self.expires_at is not None and self.expires_at <= now

    def record_error(
        self, kind: str, message: str, at: float, backtrace: tuple[str, ...] = ()
    ) -> None:
        entry: dict[str, Any] = {
            "attempt": self.attempt,
            "type": kind,
            "message": message,
            "at": at,
        }
        if backtrace:
            entry["backtrace"] = list(backtrace)
        self.errors = (*self.errors, entry)

    def to_wire(self) -> dict[str, Any]:
        """The Job map of PROTOCOL.md section 4; optional fields only when set."""
        wire: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "args": list(self.args),
            "queue": self.queue,
            "priority": self.priority,
            "max_attempts": self.max_attempts,
            "retry": self.retry.to_wire(),
            "route": self.route or {},  # never EMPTY_MAP itself: msgpack cannot pack it
            "meta": self.meta or {},
            "state": self.state,
            "attempt": self.attempt,
            "created_at": self.created_at,
            "errors": list(self.errors),
        }
        for key in (
            "scheduled_at",
            "timeout",
            "unique_key",
            "started_at",
            "completed_at",
            "worker_id",
            "next_attempt_at",
        ):
            value = getattr(self, key)
            if value is not None:
                wire[key] = value
        if self.limit is not None:
            wire.update(self.limit.to_wire())
        if self.flow is not None:
            wire.update(self.flow.to_wire(self.request_id))
        if self.expires_at is not None:
            wire["expires_at"] = self.expires_at
        if self.run_timeout is not None:
            wire["run_timeout"] = self.run_timeout
        if self.state == states.COMPLETED:
            wire["result"] = self.result
        return wire

    @classmethod
    def from_wire(
        cls, wire: dict[str, Any], seq: int, request_id: str | None = None
    ) -> Job:
        """Rebuild a job from its stored wire form, in the compact forms of `from_spec`."""
        retry = RetryPolicy(**(wire.get("retry") or {}))
        return cls(
            id=wire["id"],
            type=shared_name(wire["type"]),
            args=tuple(wire["args"]),
            queue=shared_name(wire["queue"]),
            priority=wire["priority"],
            scheduled_at=wire.get("scheduled_at"),
            max_attempts=wire["max_attempts"],
            retry=DEFAULT_RETRY if retry == DEFAULT_RETRY else retry,  # one shared default
            timeout=wire.get("timeout"),
            route=wire["route"] or EMPTY_MAP,
            unique_key=wire.get("unique_key"),
            meta=wire["meta"] or EMPTY_MAP,
            created_at=wire["created_at"],
            seq=seq,
            state=wire["state"],
            attempt=wire["attempt"],
            started_at=wire.get("started_at"),
            completed_at=wire.get("completed_at"),
            worker_id=wire.get("worker_id"),
            result=wire.get("result"),
            next_attempt_at=wire.get("next_attempt_at"),
            errors=tuple(wire.get("errors", ())),
            request_id=request_id,
            limit=JobLimit.of_wire(wire),
            flow=Flow.of_wire(wire),
            expires_at=wire.get("expires_at"),
            run_timeout=wire.get("run_timeout"),
        )


def retry_delay(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """Delay before the attempt after `attempt` (PROTOCOL.md section 5).

    min(initial * coefficient^(attempt-1), max_interval), scaled by U[0.5, 1.0] with jitter;
    with the `linear` backoff (extension "Linear backoff") min(initial * attempt, max_interval).
    """
    exponent = max(0, attempt - 1)
    try:
        if policy.backoff == LINEAR:
            raw = policy.initial_interval * (exponent + 1)
        else:
            raw = policy.initial_interval * policy.backoff_coefficient**exponent
    except OverflowError:
        raw = policy.max_interval
    delay = min(raw, policy.max_interval)
    if policy.jitter:
        delay *= rng.uniform(0.5, 1.0)
    return delay
