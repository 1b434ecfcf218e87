"""OJS workflows (chain, group, batch) as corral workflows (docs/PROTOCOL.md "Workflows"): made
atomically by one `workflow` request whose id is the workflow's, read with `workflow_get`,
cancelled with `workflow_cancel`.

- chain: each step after the one before, given its result (`parent_results` on the HTTP side);
  a step that fails for good cancels the rest.
- group: the jobs side by side.
- batch: the jobs side by side, then its callbacks once every job has ended: `on_complete`
  runs whatever the jobs did, `on_success` only when every job completed, `on_failure` only
  when one did not (extension "Step policies" gives each callback its own failure policy;
  a callback not called for ends `cancelled`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from actors.clock import SystemClock
from actors.ids import IdFactory
from nodes.gateway.backend import Backend
from nodes.gateway.envelope import RESERVED_META, job_spec
from nodes.gateway.errors import OjsError, invalid
from nodes.gateway.http import json_object, respond

KINDS = ("chain", "group", "batch")
CALLBACK_POLICY = {"on_complete": "continue", "on_success": "cancel", "on_failure": "only"}
MAX_STEPS = 10_000
ENDED = frozenset({"completed", "discarded", "cancelled"})


class WorkflowRoutes:
    def __init__(self, backend: Backend, now: Callable[[], float]) -> None:
        self.backend = backend
        self.now = now
        self.ids = IdFactory(SystemClock())  # workflow ids are UUIDv7, as the binding's

    async def create(self, request: Request) -> Response:
        body = await json_object(request)
        kind = body.get("type")
        if kind not in KINDS:
            raise invalid(f"type must be one of {', '.join(KINDS)}")
        name = body.get("name", "")
        if not isinstance(name, str) or len(name) > 256:
            raise invalid("name must be a string of at most 256 characters")
        members = body.get("steps" if kind == "chain" else "jobs", body.get("steps"))
        if not isinstance(members, list) or not 0 < len(members) <= MAX_STEPS:
            raise invalid(f"a {kind} needs 1 to {MAX_STEPS} steps")
        now = self.now()
        specs = [self._step(item, f"steps[{i}]", now) for i, item in enumerate(members)]
        about = {"type": kind, "name": name, "total": len(specs)}
        specs[0]["meta"][RESERVED_META]["workflow"] = about
        if kind == "chain":
            for spec in specs[1:]:  # given the step before's result as its last argument
                spec["meta"][RESERVED_META]["arity"] = len(spec["args"])
            tree: dict[str, Any] = {"chain": specs}
        else:
            tree = {"group": specs}
            callbacks = self._callbacks(body.get("callbacks"), kind, len(specs), now)
            if callbacks:
                tree["callback"] = callbacks[0] if len(callbacks) == 1 else {"group": callbacks}
        workflow_id = self.ids.new()
        made = await self.backend.request(
            "workflow", workflow=tree, on_failure="cancel", request_id=workflow_id
        )
        pairs = zip(made["job_ids"], made["states"], strict=True)
        steps = [{"id": job_id, "state": state} for job_id, state in pairs]
        view = _view(workflow_id, about, {"state": "running", "steps": steps})
        return respond(request, {"workflow": view}, 201)

    def _step(self, item: Any, where: str, now: float) -> dict[str, Any]:
        try:
            spec = job_spec(item, now)
        except OjsError as exc:
            exc.message = f"{where}: {exc.message}"
            raise
        if "id" in spec or "unique_key" in spec:
            raise invalid(f"{where}: a workflow step takes neither id nor unique")
        return spec

    def _callbacks(self, raw: Any, kind: str, members: int, now: float) -> list[dict[str, Any]]:
        if raw is None:
            return []
        if kind != "batch" or not isinstance(raw, dict):
            raise invalid("callbacks belong to a batch: {on_complete?, on_success?, on_failure?}")
        unknown = sorted(set(raw) - set(CALLBACK_POLICY))
        if unknown:
            raise OjsError(422, "unsupported", f"batch callbacks {unknown} are not supported")
        made = []
        for hook, policy in CALLBACK_POLICY.items():
            if hook in raw:
                spec = self._step(raw[hook], f"callbacks.{hook}", now)
                spec["meta"][RESERVED_META]["arity"] = len(spec["args"])
                spec["meta"][RESERVED_META]["parents"] = members
                made.append({**spec, "on_failure": policy})
        return made

    async def get(self, request: Request) -> Response:
        workflow_id = request.path_params["workflow_id"]
        return respond(request, {"workflow": await self._read(workflow_id)})

    async def cancel(self, request: Request) -> Response:
        workflow_id = request.path_params["workflow_id"]
        await self._read(workflow_id)  # 404 for an unknown workflow
        await self.backend.request("workflow_cancel", workflow_id=workflow_id)
        return respond(request, {"workflow": await self._read(workflow_id)})

    async def _read(self, workflow_id: str) -> dict[str, Any]:
        reply = await self.backend.request("workflow_get", workflow_id=workflow_id, limit=MAX_STEPS)
        if not reply.get("steps"):
            raise OjsError(404, "not_found", f"workflow {workflow_id} not found")
        first = await self.backend.job(reply["steps"][0]["id"])
        about = (first.get("meta") or {}).get(RESERVED_META, {}).get("workflow")
        if about is None:  # made by a corral client: every step is a member
            about = {"type": "workflow", "name": "", "total": len(reply["steps"])}
        return _view(workflow_id, about, reply)


def _view(workflow_id: str, about: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
    """The binding's workflow object: its members (a batch's callbacks are not counted)."""
    members = reply["steps"][: about["total"]]
    done = sum(step["state"] == "completed" for step in members)
    failed = sum(step["state"] in ("discarded", "cancelled") for step in members)
    view = {
        "id": workflow_id,
        "type": about["type"],
        "name": about["name"],
        "state": _state(reply["steps"], members),
        "steps_total": about["total"],
        "steps_completed": done,
        "jobs_total": about["total"],
        "jobs_completed": done,
        "jobs_failed": failed,
        "job_ids": [step["id"] for step in reply["steps"]],
    }
    return view


def _state(steps: list[dict[str, Any]], members: list[dict[str, Any]]) -> str:
    """running until every step has ended; then as its members ended: completed, failed (one
    discarded) or cancelled. A batch's callbacks do not count: one not called for is cancelled."""
    if any(step["state"] not in ENDED for step in steps):
        return "running"
    ended = {step["state"] for step in members}
    if ended == {"completed"}:
        return "completed"
    return "failed" if "discarded" in ended else "cancelled"
