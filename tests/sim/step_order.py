"""A watch on workflow steps over a simulated run: from the coordinator's events, no step
starts before every job it waits for has ended, and a step ends as its policy says: under
`cancel` it runs only if every parent completed, under `only` only if one did not."""

from __future__ import annotations

from typing import Any

from actors import events


class StepOrder:
    """Every step's start and end, in the coordinator's event order."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str, str]] = []

    def observe(self, name: str, payload: dict[str, Any]) -> None:
        if name in (events.JOB_STARTED, events.JOB_TERMINAL):
            job = payload["job"]
            self.log.append((name, job.id, job.state))

    def check(self, client: Any, job_ids: list[str]) -> None:
        """No step started before each of its parents ended, completed unless its policy
        is `continue`."""
        ended: dict[str, str] = {}
        for name, job_id, state in self.log:
            if name == events.JOB_TERMINAL:
                ended[job_id] = state
            elif job_id in job_ids:
                job = client.get(job_id).raw
                waiting = [p for p in job["depends_on"] if p not in ended]
                assert not waiting, f"{job_id} started before {waiting} ended"
                failed = [p for p in job["depends_on"] if ended[p] != "completed"]
                if job["on_failure"] == "cancel":
                    assert not failed, f"{job_id} started though {failed} failed"
                elif job["on_failure"] == "only":
                    assert failed, f"{job_id} (on_failure only) started though none failed"

    def check_policy(self, client: Any, job_ids: list[str]) -> None:
        """Under on_failure cancel: a step completed only if every parent completed, and a
        step whose parent failed was cancelled as parent_failed (or a cancel asked for it).
        Under continue, a step waits for its parents to end and nothing more."""
        for job_id in job_ids:
            job = client.get(job_id)
            if job.raw["on_failure"] == "continue":
                continue
            parents = [client.get(p).state for p in job.raw["depends_on"]]
            if job.raw["on_failure"] == "only":  # runs only when a parent failed
                if parents and all(state == "completed" for state in parents):
                    assert job.state == "cancelled", f"{job_id} ran though no parent failed"
                if job.state == "completed":
                    assert any(state != "completed" for state in parents)
                continue
            if any(state != "completed" for state in parents):
                assert job.state == "cancelled", f"{job_id} ran though a parent failed"
            if job.state == "completed" and parents:
                assert all(state == "completed" for state in parents)
