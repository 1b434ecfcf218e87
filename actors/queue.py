"""One queue: its scheduled, available and retryable jobs, ordered by priority then age.

`QueueCore` is the pure part (no threads, time passed in). Jobs waiting to be handed out sit in
one heap per route class, so a claim costs O(classes x log n) however many jobs are queued, and
jobs no connected worker may take never block the ones behind them.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict

from actors import states
from actors.jobs import Job
from actors.routing import RouteClass, Routing, WorkerProfile, route_class

HeapEntry = tuple[int, int, str]  # (-priority, seq, job_id)


class QueueCore:
    """The waiting jobs of one queue. Every job held here is scheduled, available or retryable."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.routing = Routing(name)
        self._jobs: dict[str, Job] = {}
        self._classes: dict[str, RouteClass] = {}
        self._ready: dict[RouteClass, list[HeapEntry]] = defaultdict(list)
        self._available: Counter[RouteClass] = Counter()  # live available jobs per class
        self._timed: list[tuple[float, int, str]] = []

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._jobs

    def add(self, job: Job) -> bool:
        """Hold a waiting job; True when it can be handed out now."""
        self._jobs[job.id] = job
        self._classes[job.id] = route_class(job.type, job.route)
        if job.state == states.AVAILABLE:
            self._make_ready(job)
            return True
        due = job.scheduled_at if job.state == states.SCHEDULED else job.next_attempt_at
        heapq.heappush(self._timed, (due or 0.0, job.seq, job.id))
        return False

    def promote(self, now: float) -> list[Job]:
        """Make every scheduled or retryable job that is due available; return them."""
        promoted = []
        while self._timed and self._timed[0][0] <= now:
            _, _, job_id = heapq.heappop(self._timed)
            job = self._jobs.get(job_id)
            if job is None or job.state == states.AVAILABLE:
                continue  # cancelled, or a stale entry
            job.move(states.AVAILABLE)
            job.next_attempt_at = None
            self._make_ready(job)
            promoted.append(job)
        return promoted

    def _make_ready(self, job: Job) -> None:
        job_class = self._classes[job.id]
        heapq.heappush(self._ready[job_class], (-job.priority, job.seq, job.id))
        self._available[job_class] += 1

    def remove(self, job_id: str) -> Job | None:
        """Take a job out (cancellation); its heap entries are skipped lazily."""
        job_class = self._classes.pop(job_id, None)
        job = self._jobs.pop(job_id, None)
        if job is not None and job.state == states.AVAILABLE and job_class is not None:
            self._available[job_class] -= 1
        return job

    def claim(self, worker: WorkerProfile, count: int) -> list[Job]:
        """Pop up to `count` jobs this worker may take, best first (priority, then age)."""
        heaps = [
            heap
            for job_class, heap in self._ready.items()
            if heap and self.routing.may_take(worker, job_class)
        ]
        claimed: list[Job] = []
        while len(claimed) < count:
            for heap in heaps:
                self._skip_stale(heap)
            heaps = [heap for heap in heaps if heap]
            if not heaps:
                break
            _, _, job_id = heapq.heappop(min(heaps, key=lambda heap: heap[0]))
            self._available[self._classes.pop(job_id)] -= 1
            claimed.append(self._jobs.pop(job_id))
        return claimed

    def _skip_stale(self, heap: list[HeapEntry]) -> None:
        while heap:
            job = self._jobs.get(heap[0][2])
            if job is not None and job.state == states.AVAILABLE:
                return
            heapq.heappop(heap)

    def unroutable(self) -> int:
        """Available jobs that no connected worker is eligible for (they wait, counted)."""
        return sum(
            count
            for job_class, count in self._available.items()
            if count and self.routing.top_specificity(job_class) < 0
        )
