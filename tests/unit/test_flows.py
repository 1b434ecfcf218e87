"""The rules of deferred jobs (actors/flows.py): a job moves on once every parent has ended,
gives up on a failed one unless its policy is `continue`, hears of each parent once however it
hears, and a fan-in costs each member one step."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from actors import states
from actors.admission import check_parents
from actors.flows import Abandoned, FlowCore, Released
from actors.jobs import Job
from actors.store.memory import MemoryStore
from transport.jobspec import Flow, JobSpec

NOW = 1_700_000_000.0


def deferred(job_id: str, *parents: str, on_failure: str = "cancel") -> Job:
    spec = JobSpec(type="t", flow=Flow(parents, on_failure))
    job = Job.from_spec(spec, job_id, NOW, 1)
    assert job.state == states.DEFERRED
    return job


def held(core: FlowCore, job: Job, **ended: str) -> list:
    core.watch(job)
    return core.defer(job, ended)


def released(*jobs: Job) -> list[tuple[str, str]]:
    return [("released", job.id) for job in jobs]


def moved(effects: list) -> list[tuple[str, str]]:
    """What happened to which job: released, or abandoned."""
    return [
        ("released" if isinstance(effect, Released) else "abandoned", effect.job.id)
        for effect in effects
    ]


def test_a_job_is_released_when_its_last_parent_completes():
    core = FlowCore()
    job = deferred("c", "a", "b")
    assert held(core, job) == []
    assert core.ended("a", states.COMPLETED) == []
    assert moved(core.ended("b", states.COMPLETED)) == released(job)
    assert len(core) == 0 and not core.children


def test_parents_that_ended_before_it_was_deferred_count_at_once():
    core = FlowCore()
    job = deferred("c", "a", "b")
    assert held(core, job, a=states.COMPLETED) == []
    assert core.children == {"b": {"c": None}}  # nothing waits on `a` any more
    assert moved(core.ended("b", states.COMPLETED)) == released(job)


def test_a_job_whose_parents_all_ended_is_released_at_once():
    core = FlowCore()
    job = deferred("c", "a")
    assert moved(held(core, job, a=states.COMPLETED)) == released(job)
    assert not core.children and len(core) == 0


@pytest.mark.parametrize("failed", [states.DISCARDED, states.CANCELLED])
def test_a_failed_parent_gives_up_its_dependents_by_default(failed):
    core = FlowCore()
    job = deferred("c", "a", "b")
    held(core, job)
    assert core.ended("a", failed) == [Abandoned(job, "a", failed)]
    assert core.ended("b", states.COMPLETED) == []  # already gone
    assert len(core) == 0


def test_under_continue_a_failed_parent_counts_as_ended_with_no_result():
    core = FlowCore()
    job = deferred("c", "a", "b", on_failure="continue")
    held(core, job)
    assert core.ended("a", states.DISCARDED, "ignored") == []
    (effect,) = core.ended("b", states.COMPLETED, 42)
    assert isinstance(effect, Released) and effect.results == {"a": None, "b": 42}


def test_under_only_a_job_runs_once_every_parent_ended_if_one_failed():
    """An OJS batch's on_failure callback: it waits for every member, then runs if any failed
    (even one that ended before it was deferred), else is given up."""
    core = FlowCore()
    early = deferred("early", "a", "b", on_failure="only")
    assert held(core, early, a=states.DISCARDED) == []
    assert moved(core.ended("b", states.COMPLETED, 7)) == released(early)
    assert core.ended("b", states.COMPLETED) == []  # heard once only
    called = deferred("called", "a", "b", on_failure="only")
    held(core, called)
    assert core.ended("a", states.CANCELLED) == []  # waits for the others all the same
    (effect,) = core.ended("b", states.COMPLETED, 7)
    assert isinstance(effect, Released) and effect.results == {"a": None, "b": 7}
    spared = deferred("spared", "a", "b", on_failure="only")
    held(core, spared)
    assert core.ended("a", states.COMPLETED) == []
    assert core.ended("b", states.COMPLETED) == [Abandoned(spared, "b", states.COMPLETED)]
    assert len(core) == 0 and not core._triggered


def test_hearing_of_a_parent_twice_changes_nothing():
    """Through the store as it is deferred, and through the event that was on its way."""
    core = FlowCore()
    job = deferred("c", "a", "b")
    core.watch(job)
    assert core.defer(job, {"a": states.COMPLETED}) == []
    assert core.ended("a", states.COMPLETED) == []
    assert core.ended("a", states.DISCARDED) == []  # a stale notice, not a failure
    assert moved(core.ended("b", states.COMPLETED)) == released(job)


def test_a_cancelled_deferred_job_is_never_released():
    core = FlowCore()
    job = deferred("c", "a")
    held(core, job)
    assert core.remove("c") is job
    assert core.ended("a", states.COMPLETED) == []
    assert core.remove("c") is None


def test_children_of_one_parent_are_released_in_the_order_they_were_deferred():
    core = FlowCore()
    jobs = [deferred(f"c{n}", "a") for n in (3, 1, 2)]
    for job in jobs:
        held(core, job)
    assert moved(core.ended("a", states.COMPLETED)) == released(*jobs)


def test_a_fan_in_of_ten_thousand_touches_each_member_once():
    """A callback after a group of 10,000: each member's end is one set removal, the last one
    releases it; dropping an ended parent from a waiting list is O(1), not a scan."""
    core = FlowCore()
    members = [f"m{n}" for n in range(10_000)]
    callback = deferred("cb", *members)
    half = {m: states.COMPLETED for m in members[:5_000]}  # ended before it was deferred
    assert held(core, callback, **half) == []
    for n, member in enumerate(members[5_000:-1]):
        assert core.ended(member, states.COMPLETED, n) == []
    effects = core.ended(members[-1], states.COMPLETED, "last")
    assert moved(effects) == released(callback)
    heard = effects[0].results  # the half heard of as they ended, the other half left to the store
    assert len(heard) == 5_000 and heard[members[5_000]] == 0 and heard[members[-1]] == "last"
    assert not core.children


def test_a_plain_job_may_wait_only_for_stored_jobs_never_for_its_own_batch():
    """Ids are guessable (time-ordered): a batch naming its own jobs would wait for ever."""
    store = MemoryStore()
    ctx = SimpleNamespace(store=store)
    first = Job.from_spec(JobSpec(type="t"), "a", NOW, 1)
    itself = deferred("b", "b")
    cycle = [deferred("c", "d"), deferred("d", "c")]
    for batch in ([first, deferred("e", "a")], [itself], cycle):
        with pytest.raises(LookupError, match="depends_on: no job"):
            check_parents(ctx, batch)  # type: ignore[arg-type]
    store.add([first])
    check_parents(ctx, [deferred("e", "a")])  # type: ignore[arg-type]
    steps = [Job.from_spec(JobSpec(type="t", flow=Flow((), workflow=True)), "s0", NOW, 1)]
    steps.append(Job.from_spec(JobSpec(type="t", flow=Flow(("s0",), workflow=True)), "s1", NOW, 2))
    check_parents(ctx, steps)  # type: ignore[arg-type]  # a workflow's steps: compiled so
