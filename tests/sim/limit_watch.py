"""A watch on limits per key over a simulated run: from the coordinator's events, the jobs of
each bucket active at once never exceed its concurrency, and its starts never outrun its token
bucket. Judged at every start, so a breach names the job that made it."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from actors import events
from actors.limits import Bucket, LimitRules


class LimitWatch:
    def __init__(self, rules: LimitRules) -> None:
        self.rules = rules
        self._lock = threading.Lock()
        self.active: dict[Bucket, set[str]] = defaultdict(set)
        self.peak: dict[Bucket, int] = defaultdict(int)
        self._tokens: dict[Bucket, tuple[float, float]] = {}  # level, as of
        self.breaches: list[str] = []

    def observe(self, name: str, payload: dict[str, Any]) -> None:
        job = payload.get("job")
        if job is None:
            return
        limit = self.rules.of(job)
        if limit is None:
            return
        bucket = limit.bucket
        with self._lock:
            if name == events.JOB_STARTED:
                self.active[bucket].add(job.id)
                count = len(self.active[bucket])
                self.peak[bucket] = max(self.peak[bucket], count)
                if limit.concurrency is not None and count > limit.concurrency:
                    self.breaches.append(f"{job.id}: {count} active in {bucket}")
                if limit.rate is not None:
                    self._spend(bucket, limit.rate.count, limit.rate.per, job)
            elif name in (events.JOB_TERMINAL, events.JOB_RETRY, events.JOB_RECOVERED):
                self.active[bucket].discard(job.id)

    def _spend(self, bucket: Bucket, count: int, per: float, job: Any) -> None:
        """A start takes a token; `started_at` is no earlier than the coordinator's acquire, so
        the level computed here is never below the coordinator's."""
        level, at = self._tokens.get(bucket, (float(count), job.started_at))
        level = min(float(count), level + (job.started_at - at) * count / per) - 1
        self._tokens[bucket] = (level, job.started_at)
        if level < -1e-9:
            self.breaches.append(f"{job.id}: started past the rate of {bucket}")
