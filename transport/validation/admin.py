"""Queries and admin requests: ping, get, cancel, retry, delete, stats, jobs, direct, and
pause_queue / resume_queue."""

from __future__ import annotations

from typing import Any

from transport import jobspec
from transport import messages as m
from transport.errors import BadRequest
from transport.validation.fields import Parser, boolean, integer, number, string, worker_state
from transport.validation.limits import Limits

DEFAULT_JOBS_LIMIT = 50  # `jobs` extension: jobs listed unless `limit` says otherwise
MAX_JOBS_LIMIT = 1000


def _ping(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Ping:
    return m.Ping(rid, boolean(b, "identify", False))


def _get_job(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Get:
    return m.Get(rid, string(b, "job_id"), number(b, "wait", 0.0, minimum=0.0))


def _cancel(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Cancel:
    return m.Cancel(rid, string(b, "job_id"))


def _retry_job(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Retry:
    return m.Retry(rid, string(b, "job_id"))


def _delete_job(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Delete:
    return m.Delete(rid, string(b, "job_id", limit=limits.max_name_chars))


def _stats(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Stats:
    return m.Stats(rid, boolean(b, "series", False))


def _jobs(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Jobs:
    state = string(b, "state", None)
    if state is not None and state not in jobspec.JOB_STATES:
        raise BadRequest(f"state must be one of {', '.join(jobspec.JOB_STATES)}")
    limit = integer(b, "limit", DEFAULT_JOBS_LIMIT, minimum=1)
    if limit > MAX_JOBS_LIMIT:
        raise BadRequest(f"field 'limit' must be <= {MAX_JOBS_LIMIT}")
    queue = string(b, "queue", None, limit=limits.max_name_chars)
    job_type = string(b, "job_type", None, limit=limits.max_name_chars)  # `type` is "jobs"
    return m.Jobs(rid, queue, state, job_type, limit)


def _direct(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Direct:
    return m.Direct(rid, string(b, "worker_id"), worker_state(b))


def _pause_queue(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.PauseQueue:
    return m.PauseQueue(rid, string(b, "queue", limit=limits.max_name_chars), True)


def _resume_queue(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.PauseQueue:
    return m.PauseQueue(rid, string(b, "queue", limit=limits.max_name_chars), False)


PARSERS: dict[str, Parser] = {
    "ping": _ping,
    "get": _get_job,
    "cancel": _cancel,
    "retry": _retry_job,
    "delete": _delete_job,
    "stats": _stats,
    "jobs": _jobs,
    "direct": _direct,
    "pause_queue": _pause_queue,
    "resume_queue": _resume_queue,
}
