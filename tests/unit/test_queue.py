"""QueueCore against PROTOCOL.md sections 3.4, 5 and 6: order, timing, cancellation, routing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from actors import states
from actors.jobs import Job
from actors.queue import QueueCore
from actors.routing import WorkerProfile
from transport.jobspec import DEFAULT_RETRY

NOW = 1_700_000_000.0
QUEUE = "q"


def make_job(
    job_id: str,
    seq: int,
    *,
    priority: int = 0,
    job_type: str = "t",
    route: dict[str, str] | None = None,
    state: str = states.AVAILABLE,
    due: float | None = None,
) -> Job:
    """A job as the queue receives it; `due` is scheduled_at or next_attempt_at by state."""
    return Job(
        id=job_id,
        type=job_type,
        args=[],
        queue=QUEUE,
        priority=priority,
        scheduled_at=due if state == states.SCHEDULED else None,
        max_attempts=3,
        retry=DEFAULT_RETRY,
        timeout=None,
        route=dict(route or {}),
        unique_key=None,
        meta={},
        created_at=NOW,
        seq=seq,
        state=state,
        next_attempt_at=due if state == states.RETRYABLE else None,
    )


def worker(
    worker_id: str,
    *,
    queues: tuple[str, ...] = (QUEUE,),
    functions: tuple[str, ...] = (),
    labels: dict[str, list[str]] | None = None,
) -> WorkerProfile:
    return WorkerProfile.build(worker_id, queues, functions, labels)


def queue_with(*workers: WorkerProfile) -> QueueCore:
    core = QueueCore(QUEUE)
    core.update_workers(tuple(workers))
    return core


ANY = worker("any")


def ids(jobs: list[Job]) -> list[str]:
    return [job.id for job in jobs]


# -- order ----------------------------------------------------------------------------------------


def test_a_claim_hands_out_the_highest_priority_first():
    core = queue_with(ANY)
    for seq, priority in enumerate([0, 5, -2, 1], start=1):
        core.add(make_job(f"p{priority}", seq, priority=priority))
    assert ids(core.claim(ANY, 4)) == ["p5", "p1", "p0", "p-2"]


def test_jobs_of_equal_priority_are_handed_out_oldest_first_by_enqueue_order():
    core = queue_with(ANY)
    for seq in (3, 1, 4, 2):  # arrival order at the queue differs from enqueue order
        core.add(make_job(f"s{seq}", seq))
    assert ids(core.claim(ANY, 4)) == ["s1", "s2", "s3", "s4"]


def test_priority_then_age_holds_across_job_types_and_routes():
    core = queue_with(ANY)
    specs = [("a", 1, {}), ("b", 3, {}), ("a", 3, {"zone": "eu"}), ("c", 1, {}), ("b", 0, {})]
    for seq, (job_type, priority, route) in enumerate(specs, start=1):
        core.add(make_job(f"j{seq}", seq, priority=priority, job_type=job_type, route=route))
    assert ids(core.claim(ANY, 5)) == ["j2", "j3", "j1", "j4", "j5"]


def test_a_claim_respects_its_count():
    core = queue_with(ANY)
    for seq in range(1, 6):
        core.add(make_job(f"j{seq}", seq))
    assert ids(core.claim(ANY, 2)) == ["j1", "j2"]
    assert ids(core.claim(ANY, 2)) == ["j3", "j4"]
    assert ids(core.claim(ANY, 10)) == ["j5"]
    assert core.claim(ANY, 10) == []


def test_a_claim_of_zero_jobs_takes_nothing():
    core = queue_with(ANY)
    core.add(make_job("j1", 1))
    assert core.claim(ANY, 0) == []
    assert "j1" in core


def test_claimed_jobs_leave_the_queue():
    core = queue_with(ANY)
    core.add(make_job("j1", 1))
    core.add(make_job("j2", 2))
    core.claim(ANY, 1)
    assert "j1" not in core
    assert "j2" in core
    assert len(core) == 1


def test_a_recovered_job_returns_to_its_place_by_age():
    core = queue_with(ANY)
    for seq in range(1, 4):
        core.add(make_job(f"j{seq}", seq))
    [first] = core.claim(ANY, 1)
    core.add(first)  # the worker was lost: the job is available again, with its old seq
    assert ids(core.claim(ANY, 3)) == ["j1", "j2", "j3"]


# -- time -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [states.SCHEDULED, states.RETRYABLE])
def test_a_waiting_job_is_not_claimable_before_promote_reaches_its_time(state):
    core = queue_with(ANY)
    assert core.add(make_job("later", 1, state=state, due=NOW + 10)) is False
    assert core.claim(ANY, 1) == []
    assert core.promote(NOW + 9.999) == []
    assert core.claim(ANY, 1) == []
    assert "later" in core


@pytest.mark.parametrize("state", [states.SCHEDULED, states.RETRYABLE])
def test_a_waiting_job_becomes_available_and_claimable_when_promoted_at_its_time(state):
    core = queue_with(ANY)
    core.add(make_job("later", 1, state=state, due=NOW + 10))
    [promoted] = core.promote(NOW + 10)
    assert promoted.id == "later"
    assert promoted.state == states.AVAILABLE
    assert promoted.next_attempt_at is None
    assert ids(core.claim(ANY, 1)) == ["later"]


def test_a_waiting_job_is_not_claimable_before_promote_even_once_its_time_has_passed():
    core = queue_with(ANY)
    core.add(make_job("late", 1, state=states.SCHEDULED, due=NOW - 5))
    assert core.claim(ANY, 1) == []
    assert ids(core.promote(NOW)) == ["late"]


def test_promote_makes_every_due_job_available_and_leaves_the_rest():
    core = queue_with(ANY)
    core.add(make_job("t3", 1, state=states.SCHEDULED, due=NOW + 3))
    core.add(make_job("t1", 2, state=states.RETRYABLE, due=NOW + 1))
    core.add(make_job("t2", 3, state=states.SCHEDULED, due=NOW + 2))
    core.add(make_job("t9", 4, state=states.SCHEDULED, due=NOW + 9))
    assert sorted(ids(core.promote(NOW + 3))) == ["t1", "t2", "t3"]
    assert core.promote(NOW + 3) == []
    assert ids(core.claim(ANY, 10)) == ["t3", "t1", "t2"]  # then by enqueue order
    assert "t9" in core


def test_an_available_job_is_claimable_at_once_without_promote():
    core = queue_with(ANY)
    assert core.add(make_job("now", 1)) is True
    assert ids(core.claim(ANY, 1)) == ["now"]


def test_a_promoted_job_keeps_its_priority_against_jobs_already_available():
    core = queue_with(ANY)
    core.add(make_job("plain", 1, priority=0))
    core.add(make_job("urgent-later", 2, priority=9, state=states.SCHEDULED, due=NOW + 1))
    core.promote(NOW + 1)
    assert ids(core.claim(ANY, 2)) == ["urgent-later", "plain"]


# -- removal (cancellation) -----------------------------------------------------------------------


def test_a_removed_available_job_is_never_handed_out():
    core = queue_with(ANY)
    for seq in range(1, 4):
        core.add(make_job(f"j{seq}", seq))
    assert core.remove("j2").id == "j2"  # type: ignore[union-attr]
    assert ids(core.claim(ANY, 3)) == ["j1", "j3"]
    assert len(core) == 0


@pytest.mark.parametrize("state", [states.SCHEDULED, states.RETRYABLE])
def test_a_removed_waiting_job_is_never_promoted(state):
    core = queue_with(ANY)
    core.add(make_job("later", 1, state=state, due=NOW + 1))
    assert core.remove("later") is not None
    assert core.promote(NOW + 100) == []
    assert core.claim(ANY, 1) == []


def test_removing_a_job_the_queue_does_not_hold_returns_none():
    core = queue_with(ANY)
    core.add(make_job("j1", 1))
    core.claim(ANY, 1)
    assert core.remove("j1") is None
    assert core.remove("never") is None


def test_a_removed_best_job_does_not_hide_the_next_best():
    core = queue_with(ANY)
    core.add(make_job("best", 1, priority=9))
    core.add(make_job("next", 2, priority=5))
    core.remove("best")
    assert ids(core.claim(ANY, 1)) == ["next"]


# -- routing: eligibility -------------------------------------------------------------------------


def test_a_worker_not_on_the_queue_is_not_eligible():
    elsewhere = worker("w", queues=("other",))
    core = queue_with(elsewhere)
    core.add(make_job("j", 1))
    assert core.claim(elsewhere, 1) == []
    assert core.unroutable() == 1


def test_a_worker_with_functions_takes_only_those_job_types():
    resizer = worker("w", functions=("resize",))
    core = queue_with(resizer)
    core.add(make_job("crop", 1, job_type="crop"))
    core.add(make_job("resize", 2, job_type="resize"))
    assert ids(core.claim(resizer, 2)) == ["resize"]
    assert core.unroutable() == 1


def test_a_worker_without_functions_takes_every_job_type():
    core = queue_with(ANY)
    core.add(make_job("a", 1, job_type="a"))
    core.add(make_job("b", 2, job_type="b"))
    assert ids(core.claim(ANY, 2)) == ["a", "b"]


@pytest.mark.parametrize(
    ("route", "eligible"),
    [
        ({"gpu": "a100"}, True),
        ({"gpu": "h100"}, True),
        ({"gpu": "a100", "zone": "eu"}, True),  # route keys the worker has no label for are free
        ({"gpu": "t4"}, False),  # a value the worker does not list
        ({}, False),  # the worker's label key is missing from the route
        ({"zone": "eu"}, False),
    ],
)
def test_a_worker_is_eligible_only_when_the_route_matches_every_label_key(route, eligible):
    gpu = worker("gpu", labels={"gpu": ["a100", "h100"]})
    core = queue_with(gpu)
    core.add(make_job("j", 1, route=route))
    assert ids(core.claim(gpu, 1)) == (["j"] if eligible else [])
    assert core.unroutable() == (0 if eligible else 1)


def test_every_label_key_of_the_worker_must_be_matched():
    two = worker("two", labels={"gpu": ["a100"], "zone": ["eu"]})
    core = queue_with(two)
    core.add(make_job("one-key", 1, route={"gpu": "a100"}))
    core.add(make_job("both", 2, route={"gpu": "a100", "zone": "eu"}))
    core.add(make_job("wrong-zone", 3, route={"gpu": "a100", "zone": "us"}))
    assert ids(core.claim(two, 3)) == ["both"]


# -- routing: the most specific eligible worker wins ------------------------------------------


def test_a_less_specific_worker_gets_nothing_while_a_more_specific_eligible_one_is_registered():
    plain = worker("plain")
    gpu = worker("gpu", labels={"gpu": ["a100"]})
    core = queue_with(plain, gpu)
    core.add(make_job("gpu-job", 1, route={"gpu": "a100"}))
    # gpu never claims (as if busy): only its registration matters.
    assert core.claim(plain, 1) == []
    assert "gpu-job" in core
    assert core.unroutable() == 0
    assert ids(core.claim(gpu, 1)) == ["gpu-job"]


def test_a_less_specific_worker_takes_the_job_once_the_more_specific_one_is_gone():
    plain = worker("plain")
    gpu = worker("gpu", labels={"gpu": ["a100"]})
    core = queue_with(plain, gpu)
    core.add(make_job("gpu-job", 1, route={"gpu": "a100"}))
    assert core.claim(plain, 1) == []
    core.update_workers((plain,))
    assert ids(core.claim(plain, 1)) == ["gpu-job"]


def test_a_more_specific_worker_that_is_not_eligible_does_not_block_a_less_specific_one():
    plain = worker("plain")
    h100 = worker("h100", labels={"gpu": ["h100"]})
    core = queue_with(plain, h100)
    core.add(make_job("a100-job", 1, route={"gpu": "a100"}))
    core.add(make_job("no-route", 2))
    assert ids(core.claim(plain, 2)) == ["a100-job", "no-route"]
    assert core.claim(h100, 2) == []


def test_two_matched_label_keys_beat_one():
    one = worker("one", labels={"gpu": ["a100"]})
    two = worker("two", labels={"gpu": ["a100"], "zone": ["eu"]})
    core = queue_with(one, two)
    core.add(make_job("j", 1, route={"gpu": "a100", "zone": "eu"}))
    assert core.claim(one, 1) == []
    assert ids(core.claim(two, 1)) == ["j"]


def test_equally_specific_eligible_workers_may_each_take_the_job():
    left = worker("left", labels={"gpu": ["a100"]})
    right = worker("right", labels={"gpu": ["a100", "h100"]})
    core = queue_with(left, right)
    core.add(make_job("j1", 1, route={"gpu": "a100"}))
    core.add(make_job("j2", 2, route={"gpu": "a100"}))
    assert ids(core.claim(right, 1)) == ["j1"]
    assert ids(core.claim(left, 1)) == ["j2"]


def test_a_worker_registered_on_another_queue_does_not_count_for_specificity():
    plain = worker("plain")
    gpu_elsewhere = worker("gpu", queues=("other",), labels={"gpu": ["a100"]})
    core = queue_with(plain, gpu_elsewhere)
    core.add(make_job("j", 1, route={"gpu": "a100"}))
    assert ids(core.claim(plain, 1)) == ["j"]


# -- unroutable -----------------------------------------------------------------------------------


def test_with_no_worker_registered_every_available_job_is_unroutable():
    core = queue_with()
    core.add(make_job("a", 1))
    core.add(make_job("b", 2, route={"gpu": "a100"}))
    assert core.unroutable() == 2


def test_unroutable_counts_available_jobs_only():
    core = queue_with()
    core.add(make_job("now", 1))
    core.add(make_job("later", 2, state=states.SCHEDULED, due=NOW + 5))
    assert core.unroutable() == 1


def test_unroutable_follows_the_registered_workers():
    resizer = worker("w", functions=("resize",))
    core = queue_with()
    core.add(make_job("crop", 1, job_type="crop"))
    core.add(make_job("resize", 2, job_type="resize"))
    assert core.unroutable() == 2
    core.update_workers((resizer,))
    assert core.unroutable() == 1
    core.update_workers((resizer, ANY))
    assert core.unroutable() == 0


def test_removed_and_claimed_jobs_are_not_counted_unroutable():
    core = queue_with()
    for seq in range(1, 4):
        core.add(make_job(f"j{seq}", seq))
    core.remove("j1")
    core.update_workers((ANY,))
    core.claim(ANY, 1)
    core.update_workers(())
    assert core.unroutable() == 1


# -- a model of the queue -------------------------------------------------------------------------

A_ONLY = worker("a-only", functions=("a",))
CLAIMERS = {"any": ANY, "a-only": A_ONLY}


class QueueModel(RuleBasedStateMachine):
    """QueueCore against a plain list: waiting jobs sorted by (-priority, seq) when claimed."""

    claimed = Bundle("claimed")

    @initialize()
    def start(self) -> None:
        self.core = queue_with(ANY, A_ONLY)
        self.now = NOW
        self.seq = 0
        self.model: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, Job] = {}

    @rule(
        priority=st.integers(min_value=-2, max_value=2),
        job_type=st.sampled_from(["a", "b"]),
        wait=st.sampled_from([None, "scheduled", "retryable"]),
        delay=st.floats(min_value=-1.0, max_value=10.0),
    )
    def add(self, priority: int, job_type: str, wait: str | None, delay: float) -> None:
        self.seq += 1
        job_id = f"j{self.seq}"
        state = {None: states.AVAILABLE, "scheduled": states.SCHEDULED}.get(wait, states.RETRYABLE)
        due = None if wait is None else self.now + delay
        job = make_job(job_id, self.seq, priority=priority, job_type=job_type, state=state, due=due)
        self.jobs[job_id] = job
        ready = self.core.add(job)
        assert ready == (wait is None)
        self.model[job_id] = {"priority": priority, "seq": self.seq, "type": job_type, "due": due}

    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        known = [*sorted(self.model), "unknown"]
        job_id = data.draw(st.sampled_from(known))
        removed = self.core.remove(job_id)
        if job_id in self.model:
            assert removed is self.jobs[job_id]
            del self.model[job_id]
        else:
            assert removed is None

    @rule(step=st.floats(min_value=0.0, max_value=4.0))
    def promote(self, step: float) -> None:
        self.now += step
        promoted = self.core.promote(self.now)
        due = {
            job_id
            for job_id, entry in self.model.items()
            if entry["due"] is not None and entry["due"] <= self.now
        }
        assert {job.id for job in promoted} == due
        assert all(job.state == states.AVAILABLE for job in promoted)
        for job_id in due:
            self.model[job_id]["due"] = None

    @rule(target=claimed, who=st.sampled_from(sorted(CLAIMERS)), count=st.integers(0, 4))
    def claim(self, who: str, count: int) -> Any:
        profile = CLAIMERS[who]
        takes = [
            job_id
            for job_id, entry in self.model.items()
            if entry["due"] is None
            and (not profile.functions or entry["type"] in profile.functions)
        ]
        takes.sort(key=lambda job_id: (-self.model[job_id]["priority"], self.model[job_id]["seq"]))
        got = ids(self.core.claim(profile, count))
        assert got == takes[:count]
        for job_id in got:
            del self.model[job_id]
        return got

    @rule(batch=consumes(claimed))
    def recover(self, batch: Any) -> None:
        """Jobs whose worker was lost come back available with their original age."""
        for job_id in batch:
            job = self.jobs[job_id]
            job.state = states.AVAILABLE
            assert self.core.add(job) is True
            self.model[job_id] = {
                "priority": job.priority,
                "seq": job.seq,
                "type": job.type,
                "due": None,
            }

    @invariant()
    def holds_exactly_the_model(self) -> None:
        assert len(self.core) == len(self.model)
        assert all(job_id in self.core for job_id in self.model)

    @invariant()
    def every_held_job_has_an_eligible_worker(self) -> None:
        assert self.core.unroutable() == 0


QueueModel.TestCase.settings = settings(
    derandomize=True, deadline=None, database=None, max_examples=150, stateful_step_count=40
)
test_queue_core_behaves_like_a_sorted_list_of_waiting_jobs = QueueModel.TestCase
