"""Schedule requests (docs/PROTOCOL.md, Extensions): schedule_put, schedule_remove,
schedule_pause, schedule_resume and schedules. The shapes are checked here; whether a cron
expression or a time zone exists is the scheduler's to say (actors/schedules.py)."""

from __future__ import annotations

from typing import Any

from transport import messages as m
from transport.errors import BadRequest
from transport.validation.fields import Parser, number, string
from transport.validation.jobs import job_spec
from transport.validation.limits import Limits

MAX_CRON_CHARS = 256


def schedule(body: dict[str, Any], limits: Limits) -> m.Schedule:
    """A schedule map; BadRequest naming the field that is wrong."""
    if not isinstance(body, dict):
        raise BadRequest("field 'schedule' must be a map")
    name = string(body, "name", limit=limits.max_name_chars)
    job = body.get("job")
    if not isinstance(job, dict):
        raise BadRequest("field 'job' must be a map (a job spec)")
    spec = job_spec(job, limits=limits)
    # refused now rather than failing at every slot: each slot makes a new job, now
    if spec.flow is not None:
        raise BadRequest("a schedule's job cannot wait for other jobs (depends_on)")
    if spec.id is not None:
        raise BadRequest("a schedule's job cannot name an 'id': each slot makes a new job")
    if spec.expires_at is not None:
        raise BadRequest(
            "a schedule's job cannot carry 'expires_at' (one time for every slot): use"
            " run_timeout, or a schedule that makes jobs only while wanted"
        )
    cron = string(body, "cron", None, limit=MAX_CRON_CHARS)
    every = number(body, "every", None, minimum=m.MIN_EVERY_S)
    if (cron is None) == (every is None):
        raise BadRequest("a schedule needs exactly one of 'cron' and 'every'")
    overlap = string(body, "overlap", "skip")
    if overlap not in m.OVERLAP_POLICIES:
        raise BadRequest(f"field 'overlap' must be one of {', '.join(m.OVERLAP_POLICIES)}")
    misfire = string(body, "misfire", "once")
    if misfire not in m.MISFIRE_POLICIES:
        raise BadRequest(f"field 'misfire' must be one of {', '.join(m.MISFIRE_POLICIES)}")
    timezone = string(body, "timezone", "UTC", limit=limits.max_name_chars)
    return m.Schedule(name, dict(job), cron, every, timezone, overlap, misfire)


def _put(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.SchedulePut:
    if "schedule" not in b:
        raise BadRequest("missing field 'schedule'")
    return m.SchedulePut(rid, schedule(b["schedule"], limits))


def _name(b: dict[str, Any], limits: Limits) -> str:
    return string(b, "name", limit=limits.max_name_chars)


PARSERS: dict[str, Parser] = {
    "schedule_put": _put,
    "schedule_remove": lambda b, rid, size, limits: m.ScheduleRemove(rid, _name(b, limits)),
    "schedule_pause": lambda b, rid, size, limits: m.SchedulePause(rid, _name(b, limits), True),
    "schedule_resume": lambda b, rid, size, limits: m.SchedulePause(
        rid, _name(b, limits), False
    ),
    "schedules": lambda b, rid, size, limits: m.SchedulesList(rid),
}
