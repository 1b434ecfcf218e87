"""OJS cron jobs as corral schedules (docs/PROTOCOL.md extension "Schedules"): register,
list, delete. A schedule makes its job at each slot of its expression, in its time zone; the
default overlap policy skips a slot while the last job it made has not ended."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from nodes.gateway.backend import Backend
from nodes.gateway.envelope import RESERVED_META, job_spec
from nodes.gateway.errors import OjsError, invalid
from nodes.gateway.http import json_object, respond
from nodes.gateway.times import rfc3339
from transport.errors import BadRequest

OVERLAP = {"skip": "skip", "allow": "allow", "allow_overlap": "allow", "skip_if_running": "skip"}
MAX_NAME_CHARS = 256


class CronRoutes:
    def __init__(self, backend: Backend, now: Callable[[], float]) -> None:
        self.backend = backend
        self.now = now

    async def register(self, request: Request) -> Response:
        body = await json_object(request)
        name = body.get("name")
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS:
            raise invalid(f"name must be a string of 1 to {MAX_NAME_CHARS} characters")
        expression = body.get("expression", body.get("cron"))
        if not isinstance(expression, str) or not expression.strip():
            raise invalid("expression must be a cron expression such as '*/5 * * * *'")
        overlap = body.get("overlap_policy", "skip")
        if overlap not in OVERLAP:
            raise OjsError(422, "unsupported", f"overlap_policy must be one of {sorted(OVERLAP)}")
        timezone = body.get("timezone", "UTC")
        if not isinstance(timezone, str):
            raise invalid("timezone must be an IANA time zone name such as Europe/Paris")
        template = body.get("job_template")
        if template is None:  # the spec's flat shape: type, args, meta, options beside the rest
            template = {k: body[k] for k in ("type", "args", "meta", "options") if k in body}
        if not isinstance(template, dict):
            raise invalid("job_template must be an object {type, args, options}")
        spec = job_spec({"args": [], **template}, self.now())
        for key in ("id", "scheduled_at"):  # each slot makes a new job, now
            spec.pop(key, None)
        # corral keeps no creation time for a schedule: it travels with its job template
        spec["meta"] = {**spec["meta"], RESERVED_META: {
            **spec["meta"].get(RESERVED_META, {}), "cron_created_at": rfc3339(self.now())}}
        schedule = {"name": name, "job": spec, "cron": expression.strip(), "timezone": timezone,
                    "overlap": OVERLAP[overlap]}  # fmt: skip
        try:
            made = (await self.backend.request("schedule_put", schedule=schedule))["schedule"]
        except BadRequest as exc:  # the coordinator reads the expression and the time zone
            raise OjsError(
                400, "invalid_request", str(exc), details={"field": "expression"}
            ) from None
        view = _cron(made, template)
        return respond(request, {"cron": view, "cron_job": view}, 201)

    async def list(self, request: Request) -> Response:
        reply = await self.backend.request("schedules")
        views = [_cron(schedule) for schedule in reply["schedules"] if schedule.get("cron")]
        return respond(request, {"crons": views, "cron_jobs": views})

    async def delete(self, request: Request) -> Response:
        name = request.path_params["name"]
        known = (await self.backend.request("schedules"))["schedules"]
        found = next((s for s in known if s["name"] == name), None)
        if found is None:
            raise OjsError(404, "not_found", f"cron job {name} not found")
        await self.backend.request("schedule_remove", name=name)
        view = _cron(found)
        return respond(request, {"cron": view, "cron_job": view, "deleted": True})


def _cron(schedule: dict[str, Any], template: dict[str, Any] | None = None) -> dict[str, Any]:
    job = schedule["job"]
    runs = schedule.get("next_runs") or []
    view: dict[str, Any] = {
        "name": schedule["name"],
        "expression": schedule["cron"],
        "cron": schedule["cron"],
        "timezone": schedule.get("timezone", "UTC"),
        "overlap_policy": schedule.get("overlap", "skip"),
        "enabled": not schedule.get("paused", False),
        "job_template": template or {"type": job["type"], "args": job.get("args", []),
                                     "options": {"queue": job.get("queue", "default")}},
        "fired": schedule.get("fired", 0),
    }  # fmt: skip
    if runs:
        view["next_run_at"] = rfc3339(runs[0])
    created = (job.get("meta") or {}).get(RESERVED_META, {}).get("cron_created_at")
    if created:
        view["created_at"] = created
    if schedule.get("last_job_id"):
        view["last_job_id"] = schedule["last_job_id"]
    return view
