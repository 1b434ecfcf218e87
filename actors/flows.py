"""Deferred jobs: jobs that wait for others to end (docs/PROTOCOL.md extension "Workflows").

`FlowCore` is the pure part of the FlowActor (actors/flow_actor.py). It holds every deferred
job with the parents it still waits for, and for each parent the jobs waiting on it, so that a
parent ending costs its own children and nothing more: a callback waiting for a group of
10,000 is touched 10,000 times in all, once per member, never rescanned.

A job is watched before the parents' states are read (`watch`, then `defer` with what the
store says of them): a parent that ends in between is heard of twice, through the store and
through `ended`, and both are idempotent. A parent that completes counts as done; one that is
discarded or cancelled gives up its dependents (`Abandoned`) unless their policy is
`continue`, under which it counts as done with no result, or `only`, under which it is what
they wait for: they run once every parent has ended if one failed, else are given up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from actors import states
from actors.jobs import Job

ONLY = "only"  # on_failure: the job runs only when a parent failed (a batch's on_failure)


@dataclass(frozen=True, slots=True)
class Released:
    """Every parent of the job has ended: it may go to its queue. `results`: the results of
    the parents heard of as they ended (the others, ended before it was deferred, are read
    from the store)."""

    job: Job
    results: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Abandoned:
    """A parent of the job failed and its policy is to give up (on_failure: cancel), or every
    parent completed and it runs only when one fails (on_failure: only; `parent_state` is then
    `completed`)."""

    job: Job
    parent_id: str
    parent_state: str


Effect = Released | Abandoned


class FlowCore:
    """The deferred jobs of one coordinator and what each still waits for."""

    def __init__(self) -> None:
        self.deferred: dict[str, Job] = {}
        self._pending: dict[str, set[str]] = {}  # job_id -> parents that have not ended
        # job_id -> the results of its parents that ended since it was deferred, kept for a
        # job that takes them: a callback over 10,000 then reads none from the store
        self._results: dict[str, dict[str, Any]] = {}
        # parent_id -> the jobs that wait for it (a dict as an ordered set: O(1) to drop one,
        # and the same order every run, so a simulation's seed replays exactly)
        self.children: dict[str, dict[str, None]] = {}
        # the jobs of policy ONLY that a parent's failure has called for
        self._triggered: set[str] = set()

    def __len__(self) -> int:
        return len(self.deferred)

    def watch(self, job: Job) -> tuple[str, ...]:
        """Start listening for the ends of the job's parents; returns them, to be read."""
        assert job.flow is not None
        for parent_id in job.flow.depends_on:
            self.children.setdefault(parent_id, {})[job.id] = None
        return job.flow.depends_on

    def defer(self, job: Job, ended: Mapping[str, str]) -> list[Effect]:
        """Hold a watched job, given the terminal state of each parent that has ended."""
        assert job.flow is not None
        self.deferred[job.id] = job
        self._pending[job.id] = set(job.flow.depends_on)
        effects: list[Effect] = []
        for parent_id, state in ended.items():
            waiting = self.children.get(parent_id)
            if waiting is not None:  # it ended before: nothing will tell of it again
                waiting.pop(job.id, None)
                if not waiting:
                    del self.children[parent_id]
            effects += self._parent_ended(job.id, parent_id, state, None, heard=False)
        return effects

    def ended(self, parent_id: str, state: str, result: Any = None) -> list[Effect]:
        """A job ended in `state` (with `result`, when completed): the jobs waiting for it
        move on."""
        effects: list[Effect] = []
        for job_id in self.children.pop(parent_id, ()):
            effects += self._parent_ended(job_id, parent_id, state, result, heard=True)
        return effects

    def remove(self, job_id: str) -> Job | None:
        """Take a deferred job out (cancelled); its parents' lists drop it lazily."""
        self._pending.pop(job_id, None)
        self._results.pop(job_id, None)
        self._triggered.discard(job_id)
        return self.deferred.pop(job_id, None)

    def _parent_ended(
        self, job_id: str, parent_id: str, state: str, result: Any, *, heard: bool
    ) -> list[Effect]:
        job = self.deferred.get(job_id)
        pending = self._pending.get(job_id)
        if job is None or pending is None or parent_id not in pending:
            return []  # moved on already, or heard of this parent before
        flow = job.flow
        assert flow is not None
        pending.discard(parent_id)
        failed = state != states.COMPLETED
        if failed and flow.on_failure == "cancel":
            self.remove(job_id)
            return [Abandoned(job, parent_id, state)]
        if failed and flow.on_failure == ONLY:
            self._triggered.add(job_id)
        if heard and flow.pass_results:
            completed = state == states.COMPLETED
            self._results.setdefault(job_id, {})[parent_id] = result if completed else None
        if pending:
            return []
        results = self._results.pop(job_id, {})
        triggered = job_id in self._triggered
        self.remove(job_id)
        if flow.on_failure == ONLY and not triggered:  # every parent completed: not needed
            return [Abandoned(job, parent_id, state)]
        return [Released(job, results)]
