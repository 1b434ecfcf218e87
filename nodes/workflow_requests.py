"""Workflows from Python (docs/PROTOCOL.md, "Workflows"): `step`, `chain` and `group` build the
tree, and the `Client` methods below make, read and cancel it.

    from nodes import Client, chain, group, step
    made = client.enqueue_workflow(
        chain(step("fetch", [url]), group(step("resize", [64]), step("resize", [512])),
              step("publish"))
    )
    client.workflow(made["workflow_id"])  # {"state": "running", "counts": ..., "steps": [...]}

A step with parents gets their results as its last argument (one parent: its result; several:
the list, in order), unless it says `pass_results=False`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nodes.job_types import job_spec
from nodes.request_ids import new_request_id


def step(job_type: str, args: list[Any] | tuple[Any, ...] = (), **options: Any) -> dict[str, Any]:
    """One job of a workflow (options are JobSpec fields, and `pass_results`)."""
    return job_spec(job_type, args, **options)


def chain(*nodes: dict[str, Any]) -> dict[str, Any]:
    """Each node after the one before, taking its result."""
    return {"chain": list(nodes)}


def group(*nodes: dict[str, Any], callback: dict[str, Any] | None = None) -> dict[str, Any]:
    """The nodes side by side; the callback, if any, after all of them, taking their results."""
    node: dict[str, Any] = {"group": list(nodes)}
    if callback is not None:
        node["callback"] = callback
    return node


class WorkflowRequests:
    """Mixed into `Client`: chains, groups and their callbacks as one workflow."""

    request: Callable[..., dict[str, Any]]

    def enqueue_workflow(
        self,
        workflow: dict[str, Any],
        *,
        on_failure: str = "cancel",
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Make every step at once; returns `workflow_id`, `job_ids` and `states` (steps in the
        order made, each after its parents). `on_failure`: what a discarded or cancelled step
        does to the steps after it, `cancel` them or `continue` (they run, given None for its
        result). The request carries `request_id` (a fresh one unless given): it is the
        workflow's id, and a resend of it makes nothing new."""
        return self.request(
            "workflow",
            workflow=workflow,
            on_failure=on_failure,
            request_id=request_id or new_request_id(),  # a resend is then a replay
        )

    def workflow(self, workflow_id: str, limit: int = 1000) -> dict[str, Any]:
        """The workflow's state (running, completed, failed, cancelled), its counts per state,
        and its first `limit` steps, each with the indexes of the steps it waits for."""
        return self.request("workflow_get", workflow_id=workflow_id, limit=limit)

    def cancel_workflow(self, workflow_id: str) -> int:
        """Cancel every step not ended (running ones through the usual cancel); returns how
        many were asked to cancel."""
        return self.request("workflow_cancel", workflow_id=workflow_id)["cancelling"]
