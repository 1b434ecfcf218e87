"""Retry backoff, new jobs, the worker table, UUIDv7 ids and the manual clock (sections 1, 5)."""

from __future__ import annotations

import itertools
import math
import random
import re
import threading
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors import states
from actors.clock import ManualClock, SystemClock
from actors.ids import IdFactory
from actors.jobs import Job, retry_delay
from transport.jobspec import JobSpec, RetryPolicy

DETERMINISTIC = settings(derandomize=True, deadline=None, database=None, max_examples=300)
CANONICAL_UUID = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)

# -- retry delay (section 5) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 256.0), (10, 300.0), (50, 300.0)],
)
def test_the_default_retry_delay_doubles_from_one_second_up_to_300(attempt, expected):
    policy = RetryPolicy(jitter=False)
    assert retry_delay(policy, attempt, random.Random(0)) == expected


@DETERMINISTIC
@given(
    initial=st.floats(min_value=0.0, max_value=100.0),
    coefficient=st.floats(min_value=1.0, max_value=10.0),
    maximum=st.floats(min_value=0.0, max_value=10_000.0),
    attempt=st.integers(min_value=1, max_value=60),
)
def test_the_retry_delay_is_min_of_initial_times_coefficient_to_the_n_minus_1_and_max(
    initial, coefficient, maximum, attempt
):
    policy = RetryPolicy(initial, coefficient, maximum, jitter=False)
    expected = min(initial * coefficient ** (attempt - 1), maximum)
    assert math.isclose(retry_delay(policy, attempt, random.Random(0)), expected, rel_tol=1e-12)


@DETERMINISTIC
@given(
    initial=st.floats(min_value=0.0, max_value=100.0),
    coefficient=st.floats(min_value=1.0, max_value=10.0),
    maximum=st.floats(min_value=0.0, max_value=10_000.0),
    attempt=st.integers(min_value=1, max_value=60),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_a_jittered_retry_delay_lies_within_half_and_all_of_the_delay(
    initial, coefficient, maximum, attempt, seed
):
    delay = min(initial * coefficient ** (attempt - 1), maximum)
    jittered = retry_delay(
        RetryPolicy(initial, coefficient, maximum, True), attempt, random.Random(seed)
    )
    assert 0.5 * delay * (1 - 1e-12) <= jittered <= delay * (1 + 1e-12)


def test_jitter_spreads_delays_over_the_whole_half_to_one_range():
    rng = random.Random(7)
    policy = RetryPolicy(initial_interval=10.0, jitter=True)
    delays = [retry_delay(policy, 1, rng) for _ in range(500)]
    assert min(delays) < 5.5
    assert max(delays) > 9.5
    assert len(set(delays)) > 450


def test_the_same_seed_gives_the_same_jittered_delays():
    policy = RetryPolicy(jitter=True)
    first = [retry_delay(policy, n, random.Random(42)) for n in range(1, 10)]
    again = [retry_delay(policy, n, random.Random(42)) for n in range(1, 10)]
    assert first == again


def test_a_huge_attempt_number_is_capped_at_max_interval_without_overflow():
    policy = RetryPolicy(1.0, backoff_coefficient=10.0, max_interval=60.0, jitter=False)
    assert retry_delay(policy, 10_000, random.Random(0)) == 60.0


# -- new jobs (section 5; the lifecycle is in test_lifecycle.py) -------------------------------


def test_a_job_scheduled_in_the_future_starts_scheduled_and_one_due_now_starts_available():
    assert Job.from_spec(JobSpec(type="t", scheduled_at=11.0), "a", 10.0, 1).state == "scheduled"
    assert Job.from_spec(JobSpec(type="t", scheduled_at=10.0), "b", 10.0, 2).state == "available"
    assert Job.from_spec(JobSpec(type="t"), "c", 10.0, 3).state == "available"


def test_a_new_job_has_attempt_zero_and_no_errors():
    job = Job.from_spec(JobSpec(type="t"), "id", now=1.0, seq=1)
    wire = job.to_wire()
    assert wire["attempt"] == 0
    assert wire["errors"] == []


# -- worker states --------------------------------------------------------------------------------

WORKER_PAIRS = [
    (current, new) for current in states.WORKER_TRANSITIONS for new in states.WORKER_TRANSITIONS
]


@pytest.mark.parametrize(
    ("current", "new"), WORKER_PAIRS, ids=[f"{c}->{n}" for c, n in WORKER_PAIRS]
)
def test_every_worker_state_change_follows_the_table_and_terminate_is_sticky(current, new):
    if current == "terminate" and new != "terminated":
        assert states.next_worker_state(current, new) == "terminate"
    elif new in states.WORKER_TRANSITIONS[current]:
        assert states.next_worker_state(current, new) == new
    else:
        with pytest.raises(states.IllegalTransition):
            states.next_worker_state(current, new)


@pytest.mark.parametrize("asked", ["running", "quiet", "terminate"])
def test_nothing_undoes_terminate(asked):
    assert states.next_worker_state("terminate", asked) == "terminate"


def test_running_undoes_quiet():
    assert states.next_worker_state("quiet", "running") == "running"


def test_a_terminated_worker_never_comes_back():
    for asked in ("running", "quiet", "terminate"):
        with pytest.raises(states.IllegalTransition):
            states.next_worker_state("terminated", asked)


# -- UUIDv7 ids (section 1) -----------------------------------------------------------------------


def test_ids_are_canonical_hyphenated_version_7_rfc_uuids():
    factory = IdFactory(ManualClock(), random.Random(1))
    for _ in range(200):
        text = factory.new()
        assert CANONICAL_UUID.match(text), text
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122


def test_an_id_carries_the_clock_time_in_milliseconds():
    clock = ManualClock(start=1_700_000_000.123)
    assert uuid.UUID(IdFactory(clock, random.Random(1)).new()).int >> 80 == 1_700_000_000_123


def test_ids_strictly_increase_within_one_millisecond_and_across_time():
    clock = ManualClock()
    factory = IdFactory(clock, random.Random(3))
    made = []
    for step in range(300):
        made.append(factory.new())
        if step % 50 == 0:
            clock.advance(0.001)
    assert all(a < b for a, b in itertools.pairwise(made))
    assert len(set(made)) == len(made)


class _SteppingClock:
    """A wall clock a test can set back (an NTP step); ManualClock only moves forward."""

    def __init__(self, now: float) -> None:
        self.at = now

    def now(self) -> float:
        return self.at

    def call_later(self, delay: float, callback: object) -> None:
        raise NotImplementedError


def test_ids_keep_increasing_when_the_clock_steps_back():
    clock = _SteppingClock(2_000.0)
    factory = IdFactory(clock, random.Random(3))  # type: ignore[arg-type]
    before = factory.new()
    clock.at = 1_000.0
    after = factory.new()
    assert before < after
    assert uuid.UUID(after).version == 7


def test_the_same_seed_and_clock_give_the_same_ids():
    def run(seed: int) -> list[str]:
        clock = ManualClock()
        factory = IdFactory(clock, random.Random(seed))
        out = []
        for _ in range(20):
            out.append(factory.new())
            clock.advance(0.0005)
        return out

    assert run(11) == run(11)
    assert run(11) != run(12)


class _MaximalRandom(random.Random):
    """Every draw is all ones: the worst case for keeping ids increasing within a millisecond."""

    def getrandbits(self, k: int) -> int:
        return (1 << k) - 1


def test_ids_stay_version_7_with_the_rfc_variant_when_random_bits_run_out_within_a_millisecond():
    factory = IdFactory(ManualClock(), _MaximalRandom())
    made = [factory.new() for _ in range(3)]
    assert all(a < b for a, b in itertools.pairwise(made))
    for text in made:
        assert uuid.UUID(text).version == 7, text
        assert uuid.UUID(text).variant == uuid.RFC_4122, text


# -- ManualClock ----------------------------------------------------------------------------------


def test_advance_fires_due_timers_in_deadline_order_with_now_at_each_deadline():
    clock = ManualClock(start=100.0)
    fired: list[tuple[str, float]] = []
    for name, delay in [("c", 3.0), ("a", 1.0), ("b", 2.0), ("late", 10.0)]:
        clock.call_later(delay, lambda name=name: fired.append((name, clock.now())))
    clock.advance(5.0)
    assert fired == [("a", 101.0), ("b", 102.0), ("c", 103.0)]
    assert clock.now() == 105.0
    clock.advance(5.0)
    assert fired[-1] == ("late", 110.0)


def test_timers_with_the_same_deadline_fire_in_the_order_they_were_set():
    clock = ManualClock()
    fired: list[int] = []
    for n in range(5):
        clock.call_later(1.0, lambda n=n: fired.append(n))
    clock.advance(1.0)
    assert fired == [0, 1, 2, 3, 4]


def test_a_cancelled_timer_never_fires():
    clock = ManualClock()
    fired: list[str] = []
    keep = clock.call_later(1.0, lambda: fired.append("keep"))
    drop = clock.call_later(0.5, lambda: fired.append("drop"))
    drop.cancel()
    drop.cancel()  # idempotent
    clock.advance(10.0)
    assert fired == ["keep"]
    assert not keep.cancelled


def test_a_timer_set_by_a_firing_timer_fires_in_the_same_advance_when_due():
    clock = ManualClock(start=0.0)
    fired: list[tuple[str, float]] = []

    def first() -> None:
        fired.append(("first", clock.now()))
        clock.call_later(1.0, lambda: fired.append(("second", clock.now())))

    clock.call_later(1.0, first)
    clock.advance(2.5)
    assert fired == [("first", 1.0), ("second", 2.0)]


def test_a_timer_is_not_fired_before_its_deadline():
    clock = ManualClock(start=0.0)
    fired: list[float] = []
    clock.call_later(1.0, lambda: fired.append(clock.now()))
    clock.advance(0.999)
    assert fired == []
    clock.advance(0.001)
    assert fired == [1.0]


def test_a_failing_timer_callback_does_not_stop_later_timers():
    clock = ManualClock(start=0.0)
    fired: list[str] = []

    def boom() -> None:
        raise RuntimeError("observer bug")

    clock.call_later(1.0, boom)
    clock.call_later(2.0, lambda: fired.append("after"))
    clock.advance(3.0)
    assert fired == ["after"]


# -- SystemClock ----------------------------------------------------------------------------------


def test_a_system_clock_timer_earlier_than_the_pending_ones_still_wakes_the_timer_thread():
    # The thread sleeps until the earliest deadline and is woken only when a new timer comes
    # first: a 0.01 s timer set behind a 60 s one must fire now, not in a minute.
    clock = SystemClock()
    running, fired = threading.Event(), threading.Event()
    clock.call_later(60.0, lambda: None)
    clock.call_later(0.01, running.set)
    assert running.wait(5.0)  # the thread now sleeps towards the 60 s deadline
    clock.call_later(30.0, lambda: None)
    clock.call_later(0.01, fired.set)
    assert fired.wait(5.0)


def test_system_clock_timers_fire_in_deadline_order_whatever_order_they_were_set_in():
    clock = SystemClock()
    fired: list[str] = []
    done = threading.Event()
    clock.call_later(0.06, lambda: (fired.append("c"), done.set()))
    clock.call_later(0.02, lambda: fired.append("a"))
    clock.call_later(0.04, lambda: fired.append("b"))
    assert done.wait(5.0)
    assert fired == ["a", "b", "c"]


def test_next_deadline_skips_cancelled_timers():
    clock = ManualClock(start=0.0)
    assert clock.next_deadline() is None
    clock.call_later(1.0, lambda: None).cancel()
    clock.call_later(2.0, lambda: None)
    assert clock.next_deadline() == 2.0
