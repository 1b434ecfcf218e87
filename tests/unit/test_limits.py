"""The rules of limits per key (actors.limits): which limit a job is under, and the Limiter's
counts and token buckets on a manual clock."""

from __future__ import annotations

import pytest

from actors.jobs import Job
from actors.limits import Limit, Limiter, LimitRule, LimitRules
from transport.jobspec import JobLimit, JobSpec, Rate

NOW = 1_700_000_000.0


def job(
    job_type: str = "sync", queue: str = "default", limit: JobLimit | None = None, n: int = 1
) -> Job:
    return Job.from_spec(JobSpec(type=job_type, queue=queue, limit=limit), f"j{n}", NOW, n)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


RULES = LimitRules(
    [
        LimitRule(job_type="sync", concurrency=2),
        LimitRule(queue="emails", rate=Rate(10, 60.0)),
        LimitRule(job_type="report", queue=None, concurrency=1, rate=Rate(5, 1.0)),
    ]
)


# -- which limit ----------------------------------------------------------------------------------


def test_a_job_without_key_or_rule_is_under_no_limit():
    assert RULES.of(job("other")) is None
    assert LimitRules().of(job("sync")) is None
    assert LimitRules().of(job("sync", limit=JobLimit(key="c1"))) is None  # a key alone


def test_a_configured_limit_counts_per_concurrency_key_or_the_type_as_a_whole():
    assert RULES.of(job("sync", limit=JobLimit(key="customer:1"))) == Limit(
        ("type:sync", "customer:1"), 2, None
    )
    assert RULES.of(job("sync")) == Limit(("type:sync", ""), 2, None)


def test_a_type_rule_comes_before_a_queue_rule():
    assert RULES.of(job("sync", queue="emails")).bucket == ("type:sync", "")  # type: ignore[union-attr]
    assert RULES.of(job("welcome", queue="emails")) == Limit(
        ("queue:emails", ""), None, Rate(10, 60.0)
    )


def test_a_jobs_own_limit_takes_the_place_of_a_configured_one_and_is_shared_by_key():
    own = JobLimit(key="customer:1", concurrency=5)
    assert RULES.of(job("sync", limit=own)) == Limit(("job", "customer:1"), 5, None)
    assert RULES.of(job("other", limit=own)).bucket == ("job", "customer:1")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"concurrency": 1}, "a job_type or for a queue"),
        ({"job_type": "a", "queue": "b", "concurrency": 1}, "a job_type or for a queue"),
        ({"job_type": "a"}, "concurrency, rate or both"),
        ({"job_type": "a", "concurrency": 0}, ">= 1"),
    ],
)
def test_a_rule_that_cannot_apply_is_refused(fields, problem):
    with pytest.raises(ValueError, match=problem):
        LimitRule(**fields)


# -- concurrency ----------------------------------------------------------------------------------


def test_a_concurrency_limit_admits_its_count_then_refuses_and_registers_the_queue():
    limiter = Limiter(RULES, Clock())
    limit = Limit(("type:sync", "c1"), 2, None)
    assert limiter.acquire(limit, "q1") and limiter.acquire(limit, "q1")
    assert not limiter.acquire(limit, "q1")
    assert limiter.active(limit.bucket) == 2
    released = limiter.release(job("sync", limit=JobLimit(key="c1")))
    assert released == (limit.bucket, ["q1"])  # the waiting queue is told
    assert limiter.active(limit.bucket) == 1
    limiter.stop_waiting(limit.bucket, "q1")
    released = limiter.release(job("sync", limit=JobLimit(key="c1")))
    assert released == (limit.bucket, [])  # nobody waits any more
    assert limiter.active(limit.bucket) == 0


def test_admission_counts_the_jobs_a_queue_has_lined_up_already():
    limiter = Limiter(RULES, Clock())
    limit = Limit(("type:sync", "c1"), 2, None)
    assert limiter.admit(limit, 0, "q") and limiter.admit(limit, 1, "q")
    assert not limiter.admit(limit, 2, "q")
    limiter.force(limit)
    assert not limiter.admit(limit, 1, "q")


def test_a_job_found_active_at_a_restart_takes_its_slot_even_past_the_limit():
    limiter = Limiter(RULES, Clock())
    limit = Limit(("type:sync", ""), 2, None)
    for _ in range(3):
        limiter.force(limit)
    assert limiter.active(limit.bucket) == 3
    assert limiter.room(limit) == -1
    assert not limiter.acquire(limit, "q")


def test_releasing_a_job_under_no_limit_changes_nothing():
    limiter = Limiter(RULES, Clock())
    assert limiter.release(job("other")) is None


def test_keys_are_counted_apart():
    limiter = Limiter(RULES, Clock())
    one, two = Limit(("type:sync", "c1"), 1, None), Limit(("type:sync", "c2"), 1, None)
    assert limiter.acquire(one, "q") and limiter.acquire(two, "q")
    assert not limiter.acquire(one, "q")


# -- rate -----------------------------------------------------------------------------------------


def test_a_rate_starts_full_then_refills_continuously_up_to_its_count():
    clock = Clock()
    limiter = Limiter(RULES, clock)
    limit = Limit(("queue:emails", ""), None, Rate(10, 60.0))  # one token every 6 s
    assert all(limiter.acquire(limit, "q") for _ in range(10))
    assert not limiter.acquire(limit, "q")
    clock.now += 5.9
    assert limiter.room(limit) == 0
    clock.now += 0.1
    assert limiter.room(limit) == 1
    assert limiter.acquire(limit, "q") and not limiter.acquire(limit, "q")
    clock.now += 3600
    assert limiter.room(limit) == 10  # never more than its count


def test_every_active_job_of_a_key_counts_whatever_its_own_limit():
    """A key's jobs under a rate alone are active jobs of the key too: a job of the same key
    allowing one at a time waits for them."""
    limiter = Limiter(RULES, Clock())
    rated = Limit(("job", "c1"), None, Rate(5, 1.0))
    one_at_a_time = Limit(("job", "c1"), 1, None)
    assert limiter.acquire(rated, "q")
    assert not limiter.acquire(one_at_a_time, "q")
    freed = limiter.release(job(limit=JobLimit(key="c1", rate=Rate(5, 1.0))))
    assert freed == (("job", "c1"), ["q"])
    assert limiter.acquire(one_at_a_time, "q")


def test_both_limits_hold_together():
    clock = Clock()
    limiter = Limiter(RULES, clock)
    limit = Limit(("type:report", ""), 1, Rate(5, 1.0))
    assert limiter.acquire(limit, "q") and not limiter.acquire(limit, "q")  # concurrency 1
    limiter.release(job("report"))
    for _ in range(4):
        assert limiter.acquire(limit, "q")
        limiter.release(job("report"))
    assert not limiter.acquire(limit, "q")  # 5 starts in no time: the rate
    clock.now += 0.2
    assert limiter.acquire(limit, "q")


def test_full_token_buckets_are_forgotten_so_keys_seen_once_do_not_stay():
    clock = Clock()
    limiter = Limiter(RULES, clock)
    for key in range(100):
        assert limiter.acquire(Limit(("job", str(key)), None, Rate(2, 1.0)), "q")
    limiter.forget_full()
    assert len(limiter._tokens) == 100  # half full: kept
    clock.now += 0.5
    limiter.forget_full()
    assert not limiter._tokens
