"""Limits per key that hold across every worker: at most N active jobs, at most N starts per
period (a token bucket).

Which limit a job is under (`LimitRules.of`): its own (`concurrency_limit`, `rate_limit`, with
its `concurrency_key`), else the one configured for its job type, else the one configured for
its queue. A configured limit counts per concurrency key, or the type (the queue) as a whole
for jobs without a key. Each limit and key is one `Bucket`, and every active job of a bucket
counts toward its concurrency, whatever its own limit; a job takes a slot of its bucket
when a queue hands it out (`acquire`) and gives it back when it stops being active (`release`:
acked, failed, cancelled, recovered from a dead worker, or returned by the supervisor unused).

`Limiter` is the one count of every bucket, shared by the queue actors (which acquire) and the
supervisor (which releases), hence its lock; nothing is told to an actor under it. A queue
that holds jobs back for a bucket is registered as waiting on it, in the same locked step that
found the bucket full, so no release goes unheard. The count is not stored: it is the jobs
active, which the store keeps, and a restart takes the slots of the jobs it adopts (`force`).
Rate buckets start full after a restart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from actors.jobs import Job
from transport.jobspec import Rate

Bucket = tuple[str, str]  # (scope, key): ("job", key), ("type:T", key), ("queue:Q", key)


@dataclass(frozen=True, slots=True)
class LimitRule:
    """A configured limit (YAML `job_limits:`): for one job type or one queue."""

    job_type: str | None = None
    queue: str | None = None
    concurrency: int | None = None
    rate: Rate | None = None

    def __post_init__(self) -> None:
        if (self.job_type is None) == (self.queue is None):
            raise ValueError("a limit is for a job_type or for a queue (one of the two)")
        if self.concurrency is None and self.rate is None:
            raise ValueError("a limit needs concurrency, rate or both")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError("a limit's concurrency must be >= 1")

    @property
    def scope(self) -> str:
        return f"type:{self.job_type}" if self.job_type is not None else f"queue:{self.queue}"


@dataclass(frozen=True, slots=True)
class Limit:
    """The limit one job is under: its bucket and what the bucket allows."""

    bucket: Bucket
    concurrency: int | None
    rate: Rate | None


class LimitRules:
    """The configured limits, found by job type and queue."""

    def __init__(self, rules: Iterable[LimitRule] = ()) -> None:
        self.rules = tuple(rules)
        self._by_type = {rule.job_type: rule for rule in self.rules if rule.job_type}
        self._by_queue = {rule.queue: rule for rule in self.rules if rule.queue}

    def of(self, job: Job) -> Limit | None:
        """The limit `job` is under, or None (most jobs: two dict misses at most)."""
        own = job.limit
        if own is not None and own.own:
            return Limit(("job", own.key or ""), own.concurrency, own.rate)
        if not self.rules:
            return None
        rule = self._by_type.get(job.type) or self._by_queue.get(job.queue)
        if rule is None:
            return None
        key = own.key if own is not None and own.key is not None else ""
        return Limit((rule.scope, key), rule.concurrency, rule.rate)


class _Tokens:
    """A token bucket's level as of `at`."""

    __slots__ = ("at", "level", "rate")

    def __init__(self, rate: Rate, at: float) -> None:
        self.rate = rate
        self.level = float(rate.count)
        self.at = at

    def refill(self, rate: Rate, now: float) -> float:
        if now > self.at:
            gained = (now - self.at) * rate.count / rate.per
            self.level = min(float(rate.count), self.level + gained)
            self.at = now
        return self.level


class Limiter:
    """The active count and tokens of every bucket, and the queues waiting on each."""

    def __init__(self, rules: LimitRules, now: Callable[[], float]) -> None:
        self.rules = rules
        self._now = now  # the coordinator's clock: a manual one in simulations
        self._active: dict[Bucket, int] = {}
        self._tokens: dict[Bucket, _Tokens] = {}
        self._waiting: dict[Bucket, set[str]] = {}
        self._lock = threading.Lock()

    def of(self, job: Job) -> Limit | None:
        return self.rules.of(job)

    def admit(self, limit: Limit, promised: int, queue: str) -> bool:
        """May a queue that already lines up `promised` jobs of this bucket line up one more?
        If not, the queue is registered as waiting on the bucket."""
        with self._lock:
            if promised < self._room(limit):
                return True
            self._waiting.setdefault(limit.bucket, set()).add(queue)
            return False

    def room(self, limit: Limit) -> int:
        """Jobs of this bucket that could start now."""
        with self._lock:
            return self._room(limit)

    def acquire(self, limit: Limit, queue: str) -> bool:
        """Take a slot (and a token) for a job a queue hands out; refused when the bucket is
        full, and then the queue is registered as waiting on it."""
        with self._lock:
            if self._room(limit) < 1:
                self._waiting.setdefault(limit.bucket, set()).add(queue)
                return False
            self._take(limit)
            return True

    def force(self, limit: Limit) -> None:
        """Take a slot whatever the room: a job found active at a restart is active."""
        with self._lock:
            self._take(limit)

    def release(self, job: Job) -> tuple[Bucket, list[str]] | None:
        """The job stopped being active: give its slot back. Returns its bucket and the
        queues waiting on it (to tell), or None when the job is under no limit."""
        limit = self.rules.of(job)
        if limit is None:
            return None
        bucket = limit.bucket
        with self._lock:
            left = self._active.get(bucket, 0) - 1
            if left > 0:
                self._active[bucket] = left
            else:
                self._active.pop(bucket, None)
            waiting = self._waiting.get(bucket)
            return bucket, sorted(waiting) if waiting else []

    def stop_waiting(self, bucket: Bucket, queue: str) -> None:
        """The queue holds no more jobs for this bucket."""
        with self._lock:
            waiting = self._waiting.get(bucket)
            if waiting is not None:
                waiting.discard(queue)
                if not waiting:
                    del self._waiting[bucket]

    def active(self, bucket: Bucket) -> int:
        with self._lock:
            return self._active.get(bucket, 0)

    def forget_full(self) -> None:
        """Drop the token buckets that have refilled to full: one untouched is full anyway, so
        keys seen once do not stay forever (called on the reaper's round)."""
        with self._lock:
            now = self._now()
            full = [
                bucket
                for bucket, tokens in self._tokens.items()
                if tokens.refill(tokens.rate, now) >= tokens.rate.count
            ]
            for bucket in full:
                del self._tokens[bucket]

    # -- under the lock -----------------------------------------------------------------------

    def _room(self, limit: Limit) -> int:
        room = 1 << 62
        if limit.concurrency is not None:
            room = limit.concurrency - self._active.get(limit.bucket, 0)
        if limit.rate is not None:
            tokens = self._tokens.get(limit.bucket)
            if tokens is not None:
                room = min(room, int(tokens.refill(limit.rate, self._now())))
        return room

    def _take(self, limit: Limit) -> None:
        bucket = limit.bucket
        self._active[bucket] = self._active.get(bucket, 0) + 1  # every job of the key counts
        if limit.rate is not None:
            tokens = self._tokens.get(bucket)
            if tokens is None:
                now = self._now()
                tokens = self._tokens[bucket] = _Tokens(limit.rate, now)
            tokens.level -= 1
