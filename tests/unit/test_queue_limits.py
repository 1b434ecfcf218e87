"""QueueCore under limits per key (actors.queue, actors.limits): a full bucket's jobs wait in
their own heap without blocking the jobs behind them, come back best first when a slot frees
or tokens come, are never lost, and a fetch stays O(log n) with a million jobs over 10,000 keys
(counted, never timed)."""

from __future__ import annotations

import gc
import math

import pytest

from actors import states
from actors.jobs import Job
from actors.limits import Limiter, LimitRule, LimitRules
from actors.queue import QueueCore
from actors.routing import WorkerProfile
from tests.unit.counting import CountedSeq
from transport.jobspec import JobLimit, JobSpec, Rate

NOW = 1_700_000_000.0
ANY = WorkerProfile.build("w", ("q",), (), None)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def limited(
    job_id: str, seq: int, key: str | None = "c1", *, priority: int = 0, job_type: str = "sync"
) -> Job:
    limit = JobLimit(key=key) if key is not None else None
    spec = JobSpec(type=job_type, queue="q", priority=priority, limit=limit)
    return Job.from_spec(spec, job_id, NOW, seq)


def queue(*rules: LimitRule, clock: Clock | None = None, name: str = "q") -> QueueCore:
    rules = rules or (LimitRule(job_type="sync", concurrency=2),)
    core = QueueCore(name, Limiter(LimitRules(rules), clock or Clock()))
    core.update_workers((ANY,))
    return core


def ids(jobs: list[Job]) -> list[str]:
    return [job.id for job in jobs]


def finish(core: QueueCore, job: Job) -> None:
    """What the supervisor does when a claimed job stops being active: give its slot back and
    tell the queues waiting on its bucket."""
    freed = core.limiter.release(job)
    if freed is not None:
        core.release(freed[0])


def test_a_full_key_holds_its_jobs_and_the_jobs_behind_them_go_out():
    core = queue()
    for n in range(1, 5):
        core.add(limited(f"a{n}", n, "customer:a"))  # four of one customer first
    core.add(limited("b1", 5, "customer:b"))
    core.add(limited("free", 6, None, job_type="other"))  # under no limit
    assert ids(core.claim(ANY, 10)) == ["a1", "a2", "b1", "free"]
    assert core.limited() == 2  # a3, a4 wait for customer a
    assert len(core) == 2 and "a3" in core


def test_a_freed_slot_lines_up_the_best_held_job_of_its_key():
    core = queue()
    jobs = [limited(f"a{n}", n, priority=n) for n in range(1, 6)]
    for job in jobs:
        core.add(job)
    first = core.claim(ANY, 10)
    assert ids(first) == ["a2", "a1"]  # lined up as they came, while the key had room
    assert core.claim(ANY, 10) == []
    finish(core, first[0])
    assert ids(core.claim(ANY, 10)) == ["a5"]  # the held: highest priority first
    finish(core, first[1])
    assert ids(core.claim(ANY, 10)) == ["a4"]
    assert core.limited() == 1


def test_nothing_is_held_while_the_key_has_room():
    core = queue()
    core.add(limited("a1", 1))
    core.add(limited("a2", 2))
    assert core.limited() == 0 and core.has_ready()
    core.add(limited("a3", 3))
    assert core.limited() == 1


def test_a_held_job_that_is_cancelled_is_gone_and_never_handed_out():
    core = queue()
    for n in range(1, 4):
        core.add(limited(f"a{n}", n))
    claimed = core.claim(ANY, 10)
    removed = core.remove("a3")
    assert removed is not None and removed.id == "a3"
    assert core.limited() == 0
    for job in claimed:
        finish(core, job)
    assert core.claim(ANY, 10) == []


def test_a_lined_up_job_that_is_cancelled_frees_its_place_in_line():
    core = queue()
    for n in range(1, 4):
        core.add(limited(f"a{n}", n))
    core.remove("a1")  # lined up: its place in line goes to the held job
    core.add(limited("a4", 4))
    assert core.limited() == 1  # a4 held now
    assert ids(core.claim(ANY, 10)) == ["a2", "a3"]


def test_a_bucket_filled_by_another_queue_sends_a_lined_up_job_back_to_its_heap():
    clock = Clock()
    limiter = Limiter(LimitRules([LimitRule(job_type="sync", concurrency=1)]), clock)
    one, two = QueueCore("q", limiter), QueueCore("r", limiter)
    other = WorkerProfile.build("w2", ("r",), (), None)
    one.update_workers((ANY,))
    two.update_workers((other,))
    one.add(limited("x1", 1))
    two.add(limited("y1", 2))  # both lined up: the bucket had room for each
    assert ids(two.claim(other, 1)) == ["y1"]
    assert one.claim(ANY, 1) == []  # the slot went to the other queue
    assert one.limited() == 1 and "x1" in one
    freed = limiter.release(limited("y1", 2))
    assert freed is not None and freed[1] == ["q"]  # the queue holding x1 is told
    one.release(freed[0])
    assert ids(one.claim(ANY, 1)) == ["x1"]


def test_a_rate_limited_key_goes_on_when_tokens_come_with_time():
    clock = Clock()
    core = queue(LimitRule(job_type="sync", rate=Rate(2, 10.0)), clock=clock)
    for n in range(1, 5):
        core.add(limited(f"a{n}", n))
    assert ids(core.claim(ANY, 10)) == ["a1", "a2"]
    assert not core.refresh()
    clock.now += 5.0  # one token
    assert core.refresh()
    assert ids(core.claim(ANY, 10)) == ["a3"]
    clock.now += 10.0
    core.refresh()
    assert ids(core.claim(ANY, 10)) == ["a4"]
    assert core.limited() == 0


def test_promoted_and_returned_jobs_are_held_by_their_limit_too():
    core = queue()
    for n in range(1, 3):
        core.add(limited(f"a{n}", n))
    retry = limited("a3", 3)
    retry.state, retry.next_attempt_at = states.RETRYABLE, NOW + 5
    core.add(retry)
    core.promote(NOW + 5)
    assert core.limited() == 1  # the key had two lined up already


def test_routing_changes_keep_held_jobs_held():
    core = queue()
    for n in range(1, 4):
        core.add(limited(f"a{n}", n))
    core.update_workers((WorkerProfile.build("w", ("q",), (), {"zone": ["eu"]}),))
    core.update_workers((ANY,))
    assert core.limited() == 1
    assert ids(core.claim(ANY, 10)) == ["a1", "a2"]


def test_jobs_under_no_limit_never_touch_the_limiter():
    core = QueueCore("q")
    core.update_workers((ANY,))
    core.add(limited("a1", 1, None))
    assert ids(core.claim(ANY, 1)) == ["a1"] and core.limited() == 0


# -- cost: a million jobs over 10,000 keys ------------------------------------------------------


def log_bound(count: int) -> float:
    return 4 * math.log2(count) + 16


@pytest.mark.parametrize(
    "count", [100_000, pytest.param(1_000_000, marks=pytest.mark.slow)], ids=["100k", "1m"]
)
def test_a_fetch_over_a_million_jobs_and_ten_thousand_full_keys_does_logarithmic_work(count):
    """Two slots per key; once every key is full, a claim finds nothing in O(1), and a freed
    slot followed by a claim costs a heap pop or two: no pass over the held jobs. (A tenth of
    the size by default; the million in the `slow` tier: the bound is the same logarithm.)"""
    keys = 10_000
    core = queue()
    specs = [JobSpec(type="sync", queue="q", limit=JobLimit(key=f"k{k}")) for k in range(keys)]
    gc.disable()
    try:
        for n in range(count):
            core.add(Job.from_spec(specs[n % keys], str(n), NOW, CountedSeq(n + 1)))
    finally:
        gc.enable()
    assert core.limited() == count - 2 * keys
    claimed = core.claim(ANY, 2 * keys)  # every lined-up job: all keys full
    assert len(claimed) == 2 * keys
    CountedSeq.comparisons = 0
    assert core.claim(ANY, 1) == []
    assert CountedSeq.comparisons == 0
    for job in claimed[:100]:
        CountedSeq.comparisons = 0
        finish(core, job)
        again = core.claim(ANY, 1)
        assert len(again) == 1 and again[0].limit == job.limit  # the freed key's next job
        work = CountedSeq.comparisons
        assert work <= log_bound(count), f"{work} steps to free a slot and claim"
    assert core.limited() == count - 2 * keys - 100
