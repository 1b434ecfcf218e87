"""What `workflow_get` says of a workflow (docs/PROTOCOL.md, "Workflows"): its state, counts
per state, and its steps in the order they were made, each with the steps it waits for by
index, so that a client draws the tree without a lookup per step."""

from __future__ import annotations

from collections import Counter
from typing import Any

from actors import states

RUNNING, COMPLETED, FAILED, CANCELLED = "running", "completed", "failed", "cancelled"


def workflow_state(step_states: Counter[str]) -> str:
    """running while a step has not ended; then completed when every step completed, failed
    when one was discarded, else cancelled."""
    if any(state not in states.TERMINAL_STATES for state in step_states):
        return RUNNING
    if set(step_states) == {states.COMPLETED}:
        return COMPLETED
    return FAILED if step_states[states.DISCARDED] else CANCELLED


def workflow_view(workflow_id: str, jobs: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """The reply's fields for the Job maps a workflow's request made (None: no such workflow)."""
    steps = [job for job in jobs if job.get("workflow_id") == workflow_id]
    index = {job["id"]: position for position, job in enumerate(steps)}
    counts = Counter(job["state"] for job in steps)
    return {
        "workflow_id": workflow_id,
        "state": workflow_state(counts),
        "counts": dict(counts),
        "total": len(steps),
        "steps": [
            {
                "id": job["id"],
                "type": job["type"],
                "state": job["state"],
                "attempt": job["attempt"],
                "after": [index[parent] for parent in job["depends_on"] if parent in index],
            }
            for job in steps[:limit]
        ],
    }
