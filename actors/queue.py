"""One queue: its scheduled, available and retryable jobs, ordered by priority then age.

`QueueCore` is the pure part (no threads, time passed in). Jobs waiting to be handed out sit in
one heap per route class (job type plus the route values of keys that workers label), so a claim
costs O(classes x log n) however many jobs are queued, and jobs no connected worker may take never
block the ones behind them. A job's class is not kept per job (a dict entry per queued job): it
is computed when the job is filed or removed, and a claim knows it from the heap it pops. The
label keys it depends on change only in `update_workers`, which files every waiting job anew, so
each computation gives the class the job is filed under.

Jobs under a limit (actors/limits.py) are lined up in a class heap only while their bucket has
room: at most as many as it could start now (`_promised`). The others wait in one heap per
bucket (`_held`), so a full bucket's jobs are never popped only to be put back, and the jobs
behind them go out (no head-of-line blocking). When the bucket frees a slot (the Limiter tells
the queue, `release`) or gains tokens (the reaper's round, `refresh`), its best held jobs are
lined up again. A bucket shared with other queues may fill between lining up and handing out:
the claim's `acquire` is what counts, and a job it refuses goes back to its bucket's heap.

Jobs with an `expires_at` (docs/PROTOCOL.md extension "Expiry") are also filed in one heap by
that time (`_expiry`), so the reaper's round (`expire`) pops the jobs that expired and nothing
else, however many are queued; a claim or a promotion that meets an expired job discards it
instead of handing it out. Jobs without one never touch that heap. Entries of jobs that left
(handed out, cancelled) are dropped lazily, and the heap is rebuilt once they outnumber the
live ones (`_gone`), so it never holds more than about twice the jobs that can expire here.
Discarded jobs wait in `expired` for the shell to save and announce (`take_expired`).
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict

from actors import lifecycle, states
from actors.jobs import Job
from actors.limits import Bucket, Limit, Limiter, LimitRules
from actors.routing import RouteClass, Routing, WorkerProfile, route_class

HeapEntry = tuple[int, int, str]  # (-priority, seq, job_id)
ExpiryEntry = tuple[float, int, str]  # (expires_at, seq, job_id)
EXPIRY_SLACK = 64  # stale expiry entries tolerated beyond the live ones before a rebuild


class QueueCore:
    """The waiting jobs of one queue. Every job held here is scheduled, available or retryable."""

    def __init__(self, name: str, limiter: Limiter | None = None) -> None:
        self.name = name
        self.limiter = limiter or Limiter(LimitRules(), lambda: 0.0)
        self._limit_of = self.limiter.rules.of  # bound once: it runs for every job handed out
        self.routing = Routing(name)
        self._jobs: dict[str, Job] = {}
        self._ready: dict[RouteClass, list[HeapEntry]] = defaultdict(list)
        self._available: Counter[RouteClass] = Counter()  # live available jobs per class
        self._timed: list[tuple[float, int, str]] = []
        self.paused = False  # a paused queue holds its jobs but hands none out (actors.pauses)
        self._held: dict[Bucket, list[HeapEntry]] = {}  # jobs waiting for room in their bucket
        self._held_in: dict[str, Bucket] = {}  # job_id -> its bucket, for every held job
        self._promised: Counter[Bucket] = Counter()  # lined-up jobs per bucket
        self._rated: set[Bucket] = set()  # held buckets with a rate: tokens come with time
        self._expiry: list[ExpiryEntry] = []  # jobs with an expires_at, soonest first
        self._expiring = 0  # jobs held here with an expires_at (the live entries of _expiry)
        self.expired: list[Job] = []  # discarded for their expires_at, for the shell to save

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._jobs

    def has_ready(self) -> bool:
        """True when some job could be handed out now (to a worker allowed to take it)."""
        return bool(self._available) and not self.paused

    def add(self, job: Job) -> bool:
        """Hold a waiting job; True when it can be handed out now."""
        self._jobs[job.id] = job
        if job.expires_at is not None:
            self._expiring += 1
            heapq.heappush(self._expiry, (job.expires_at, job.seq, job.id))
        if job.state == states.AVAILABLE:
            return self._offer(job)
        due = job.scheduled_at if job.state == states.SCHEDULED else job.next_attempt_at
        heapq.heappush(self._timed, (due or 0.0, job.seq, job.id))
        return False

    def promote(self, now: float) -> list[Job]:
        """Make every scheduled or retryable job that is due available; return them. A due job
        whose expires_at has come is discarded instead (into `expired`)."""
        promoted = []
        while self._timed and self._timed[0][0] <= now:
            _, _, job_id = heapq.heappop(self._timed)
            job = self._jobs.get(job_id)
            if job is None or job.state == states.AVAILABLE:
                continue  # cancelled, or a stale entry
            if job.expires_at is not None and job.expires_at <= now:
                del self._jobs[job_id]
                self._gone(job)
                self._discard(job, now)
                continue
            lifecycle.promote(job)
            self._offer(job)
            promoted.append(job)
        return promoted

    def update_workers(self, workers: tuple[WorkerProfile, ...]) -> None:
        """New live worker profiles; regroup the waiting jobs if the label keys changed."""
        if not self.routing.update(workers):
            return
        self._ready = defaultdict(list)
        self._available = Counter()
        for job in self._jobs.values():
            if job.state == states.AVAILABLE and job.id not in self._held_in:
                job_class = self._class(job)
                self._ready[job_class].append((-job.priority, job.seq, job.id))
                self._available[job_class] += 1
        for heap in self._ready.values():
            heapq.heapify(heap)

    def _class(self, job: Job) -> RouteClass:
        if not job.route:  # most jobs: no route, nothing to sort
            return job.type, ()
        return route_class(job.type, job.route, self.routing.label_keys)

    def _offer(self, job: Job) -> bool:
        """File an available job: lined up (True), or held in its bucket while it is full."""
        limit = self._limit_of(job)
        if limit is not None:
            bucket = limit.bucket
            if not self.limiter.admit(limit, self._promised[bucket], self.name):
                self._hold(job, limit)
                return False
            self._promised[bucket] += 1
        self._make_ready(job)
        return True

    def _make_ready(self, job: Job) -> None:
        job_class = self._class(job)
        heapq.heappush(self._ready[job_class], (-job.priority, job.seq, job.id))
        self._available[job_class] += 1

    def remove(self, job_id: str) -> Job | None:
        """Take a job out (cancellation); its heap entries are skipped lazily."""
        job = self._jobs.pop(job_id, None)
        held = self._held_in.pop(job_id, None)  # if held, its heap entry is skipped lazily
        if job is not None:
            self._gone(job)
        if job is not None and job.state == states.AVAILABLE and held is None:
            self._discount(self._class(job))
            limit = self._limit_of(job)
            if limit is not None:
                self._unpromise(limit)
                self.release(limit.bucket)  # its place in line goes to the best held job
        return job

    def claim(self, worker: WorkerProfile, count: int, now: float | None = None) -> list[Job]:
        """Pop up to `count` jobs this worker may take, best first (priority, then age); none
        while the queue is paused. A job whose expires_at has come by `now` is discarded (into
        `expired`) instead of handed out; without `now`, none is."""
        if self.paused:
            return []
        classes = [
            c for c, heap in self._ready.items() if heap and self.routing.may_take(worker, c)
        ]
        claimed: list[Job] = []
        while len(claimed) < count and classes:
            for job_class in classes:
                self._skip_stale(self._ready[job_class])
            for job_class in [c for c in classes if not self._ready[c]]:
                classes.remove(job_class)
                del self._ready[job_class]  # empty classes go, so they cost nothing later
            if not classes:
                break
            best = min(classes, key=lambda c: self._ready[c][0])
            _, _, job_id = heapq.heappop(self._ready[best])
            self._discount(best)  # filed under `best`, so of that class
            job = self._jobs[job_id]
            limit = self._limit_of(job)
            if job.expires_at is not None and now is not None and job.expires_at <= now:
                del self._jobs[job_id]
                self._gone(job)
                if limit is not None:
                    self._unpromise(limit)
                    self.release(limit.bucket)  # its place in line goes to the best held job
                self._discard(job, now)
                continue
            if limit is not None:
                self._unpromise(limit)
                if not self.limiter.acquire(limit, self.name):
                    self._hold(job, limit)  # filled meanwhile (by another queue)
                    continue
                if limit.bucket in self._held:  # jobs of other limits may share the key
                    self.release(limit.bucket)
            del self._jobs[job_id]
            if job.expires_at is not None:
                self._gone(job)
            claimed.append(job)
        return claimed

    # -- expiry (docs/PROTOCOL.md extension "Expiry") ----------------------------------------

    def expire(self, now: float) -> None:
        """The reaper's round: discard every job held here (scheduled, available or retryable)
        whose expires_at has come, into `expired`. Costs a heap pop per expired job (and per
        stale entry), never a pass over the queue."""
        while self._expiry and self._expiry[0][0] <= now:
            _, _, job_id = heapq.heappop(self._expiry)  # read anew: `remove` may rebuild it
            job = self._jobs.get(job_id)
            if job is None or not job.expired(now):
                continue  # handed out or cancelled since (a stale entry), or revived
            self.remove(job_id)
            self._discard(job, now)

    def next_expiry(self) -> float | None:
        """The soonest expires_at of the jobs held here (perhaps of one gone: a lower bound)."""
        return self._expiry[0][0] if self._expiry else None

    def take_expired(self) -> list[Job]:
        """The jobs discarded for their expires_at since the last call, for the shell to save
        and announce."""
        expired, self.expired = self.expired, []
        return expired

    def _discard(self, job: Job, now: float) -> None:
        lifecycle.expire(job, now)
        self.expired.append(job)

    def _gone(self, job: Job) -> None:
        """A job left the queue: one expiry entry fewer is live. Once the stale entries
        outnumber the live ones (plus EXPIRY_SLACK), the heap is rebuilt from its live entries:
        its size stays within twice the jobs that can expire, and a rebuild's cost is paid for
        by the jobs that left since the last one."""
        if job.expires_at is None:
            return
        self._expiring -= 1
        if len(self._expiry) <= 2 * self._expiring + EXPIRY_SLACK:
            return
        jobs, seen = self._jobs, set()
        live = []
        for entry in self._expiry:
            held = jobs.get(entry[2])
            if held is not None and held.expires_at == entry[0] and entry[2] not in seen:
                seen.add(entry[2])
                live.append(entry)
        heapq.heapify(live)
        self._expiry = live

    # -- limits -------------------------------------------------------------------------------

    def release(self, bucket: Bucket) -> bool:
        """The bucket may have room again: line up its best held jobs, as many as it could
        start. True when some job was lined up."""
        heap = self._held.get(bucket)
        lined_up = False
        while heap:
            job_id = heap[0][2]
            job = self._jobs.get(job_id)
            if job is None or self._held_in.get(job_id) != bucket:
                heapq.heappop(heap)  # cancelled while held
                continue
            limit = self._limit_of(job)
            assert limit is not None  # held in its bucket
            if not self.limiter.admit(limit, self._promised[bucket], self.name):
                return lined_up
            heapq.heappop(heap)
            del self._held_in[job_id]
            self._promised[bucket] += 1
            self._make_ready(job)
            lined_up = True
        self._held.pop(bucket, None)
        self._rated.discard(bucket)
        self.limiter.stop_waiting(bucket, self.name)
        return lined_up

    def refresh(self) -> bool:
        """The reaper's round: held buckets limited by a rate have gained tokens since."""
        lined_up = False
        for bucket in list(self._rated):
            lined_up = self.release(bucket) or lined_up
        return lined_up

    def limited(self) -> int:
        """Available jobs held back by a limit (they wait, counted)."""
        return len(self._held_in)

    def _hold(self, job: Job, limit: Limit) -> None:
        bucket = limit.bucket
        heapq.heappush(self._held.setdefault(bucket, []), (-job.priority, job.seq, job.id))
        self._held_in[job.id] = bucket
        if limit.rate is not None:
            self._rated.add(bucket)

    def _unpromise(self, limit: Limit) -> None:
        bucket = limit.bucket
        self._promised[bucket] -= 1
        if not self._promised[bucket]:
            del self._promised[bucket]

    def _discount(self, job_class: RouteClass) -> None:
        self._available[job_class] -= 1
        if not self._available[job_class]:
            del self._available[job_class]

    def _skip_stale(self, heap: list[HeapEntry]) -> None:
        while heap:
            job_id = heap[0][2]
            job = self._jobs.get(job_id)
            if job is not None and job.state == states.AVAILABLE and job_id not in self._held_in:
                return
            heapq.heappop(heap)

    def unroutable(self) -> int:
        """Available jobs that no connected worker is eligible for (they wait, counted)."""
        return sum(
            count
            for job_class, count in self._available.items()
            if count and self.routing.top_specificity(job_class) < 0
        )
