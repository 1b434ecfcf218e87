"""What `workflow_get` answers for a workflow tree, built with the coordinator's own compiler
and view: the fixture of the terminal's and the dashboard's workflow tests."""

from __future__ import annotations

from typing import Any

from actors.workflow_view import workflow_view
from transport.validation.limits import Limits
from transport.validation.workflows import compile_workflow


def workflow_reply(
    tree: dict[str, Any],
    limit: int = 1000,
    states: dict[int, str] | None = None,
    workflow_id: str = "wf-1",
) -> dict[str, Any]:
    """The reply's fields for `tree`, every step completed unless `states` says."""
    steps = compile_workflow(tree, Limits())
    ids = [f"01a25118-3e3f-7a75-99f6-{index:012x}" for index in range(len(steps))]
    jobs = [
        {
            "id": ids[index],
            "type": made.spec.type,
            "state": (states or {}).get(index, "completed"),
            "attempt": 1,
            "depends_on": [ids[parent] for parent in made.parents],
            "workflow_id": workflow_id,
        }
        for index, made in enumerate(steps)
    ]
    return workflow_view(workflow_id, jobs, limit)
