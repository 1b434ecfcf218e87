"""The OJS job envelope and corral's JobSpec and Job, one into the other (docs/OJS.md).

Pure: `job_spec` validates an OJS enqueue body into the JobSpec map of corral's wire; `ojs_job`
renders a corral Job map as the binding's job object. What corral has no field for (unknown
top-level fields, tags, the retry policy's OJS-only keys, the timeouts in milliseconds) travels
in the job's meta under RESERVED_META, so a job reads back as it was sent, through any gateway.
"""

from __future__ import annotations

import re
from typing import Any

from nodes.gateway.errors import invalid
from nodes.gateway.options import (
    DEFAULT_MAX_ATTEMPTS,
    rate_limit,
    retry_policy,
    timing,
    unique_key,
)
from nodes.gateway.times import rfc3339

SPEC_VERSION = "1.0.0-rc.1"
RESERVED_META = "_ojs"
PRIORITY_RANGE = (-100, 100)
# ojs-core's pattern, with `-` allowed inside a segment: the conformance suite's own job types
# use it (`worker.test.graceful-shutdown`).
_TYPE = re.compile(r"[a-z][a-z0-9_\-]*(\.[a-z][a-z0-9_\-]*)*")
_QUEUE = re.compile(r"[a-z0-9][a-z0-9\-\.]{0,127}")
_UUID_V7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_KNOWN = frozenset(
    {"id", "type", "args", "meta", "options", "queue", "priority", "specversion", "schema",
     "scheduled_at", "expires_at", "retry", "unique", "timeout", "tags"}
)  # fmt: skip
_SYSTEM = frozenset(
    {"state", "attempt", "created_at", "enqueued_at", "started_at", "completed_at", "error",
     "errors", "result", "cancelled_at", "discarded_at", "next_attempt_at"}
)  # fmt: skip
STATE_OF = {"deferred": "pending"}  # corral state -> OJS state, where the names differ


def job_spec(body: Any, now: float) -> dict[str, Any]:
    """The corral JobSpec map of an OJS enqueue body (POST /ojs/v1/jobs), or OjsError."""
    if not isinstance(body, dict):
        raise invalid("the job must be a JSON object")
    options = body.get("options", {})
    if not isinstance(options, dict):
        raise invalid("options must be an object")
    job_type = body.get("type")
    if not isinstance(job_type, str) or _TYPE.fullmatch(job_type) is None:
        raise invalid(f"type must match {_TYPE.pattern}, got {job_type!r}", field="type")
    if "args" not in body:
        raise invalid("args is required (a JSON array, possibly empty)", field="args")
    args = body["args"]
    if not isinstance(args, list):
        raise invalid("args must be a JSON array", field="args")
    queue = options.get("queue", body.get("queue", "default"))
    if not isinstance(queue, str) or _QUEUE.fullmatch(queue) is None:
        raise invalid(f"queue must match {_QUEUE.pattern}, got {queue!r}", field="queue")
    priority = options.get("priority", body.get("priority", 0))
    low, high = PRIORITY_RANGE
    if type(priority) is not int or not low <= priority <= high:
        raise invalid(f"priority must be an integer in [{low}, {high}]", field="priority")
    meta = body.get("meta", {})
    if not isinstance(meta, dict):
        raise invalid("meta must be an object", field="meta")
    metadata = options.get("metadata", {})
    if not isinstance(metadata, dict):
        raise invalid("options.metadata must be an object", field="options.metadata")
    ojs: dict[str, Any] = {}
    extra = {k: v for k, v in body.items() if k not in _KNOWN and k not in _SYSTEM}
    if extra:
        ojs["extra"] = extra
    spec: dict[str, Any] = {"type": job_type, "args": args, "queue": queue, "priority": priority}
    if "id" in body:
        spec["id"] = _client_id(body["id"])
    retry_policy(options.get("retry", options.get("retry_policy", body.get("retry"))), spec, ojs)
    ojs.setdefault("max_attempts", spec.get("max_attempts", DEFAULT_MAX_ATTEMPTS))
    timing(options, body, now, spec, ojs)
    unique = options.get("unique", body.get("unique"))
    if unique is not None:
        spec["unique_key"] = unique_key(unique, job_type, args, queue, meta)
        ojs["unique"] = unique
    rate = options.get("rate_limit")
    if rate is not None:
        rate_limit(rate, queue, spec)
    for key in ("tags", "schema"):
        value = options.get(key, body.get(key))
        if value is not None:
            ojs[key] = value
    spec["meta"] = {**meta, **metadata, RESERVED_META: ojs}
    return spec


def _client_id(value: Any) -> str:
    if not isinstance(value, str) or _UUID_V7.fullmatch(value) is None:
        raise invalid("id must be a UUIDv7 in lowercase canonical form", field="id")
    return value


def conflict_policy(spec: dict[str, Any]) -> str:
    """What an enqueue does when a live job holds its unique key: reject (409), ignore (the
    existing job, 200) or replace (cancel it, then enqueue)."""
    unique = spec["meta"].get(RESERVED_META, {}).get("unique") or {}
    return unique.get("on_conflict", "reject")


def ojs_job(job: dict[str, Any]) -> dict[str, Any]:
    """The binding's job object of a corral Job map; fields never set are absent."""
    meta = dict(job.get("meta") or {})
    ojs = meta.pop(RESERVED_META, {}) if isinstance(meta.get(RESERVED_META), dict) else {}
    state = STATE_OF.get(job["state"], job["state"])
    # A dead-letter retry gives a job a new round of attempts; corral counts on (so acks of an
    # older attempt stay refused) and raises max_attempts: OJS counts each round from 0.
    rounds = job["max_attempts"] - ojs.get("max_attempts", job["max_attempts"])
    args = job["args"]
    arity = ojs.get("arity")
    if arity is not None and len(args) > arity:  # a workflow step given its parents' results
        parent_results = args[arity] if ojs.get("parents", 1) > 1 else [args[arity]]
        args = args[:arity]
    view: dict[str, Any] = {
        **ojs.get("extra", {}),
        "specversion": SPEC_VERSION,
        "id": job["id"],
        "type": job["type"],
        "queue": job["queue"],
        "args": args,
        "meta": meta,
        "priority": job["priority"],
        "state": state,
        "attempt": max(0, job["attempt"] - rounds),
        "max_attempts": job["max_attempts"] - rounds,
        "created_at": (created := rfc3339(job["created_at"])),
        "enqueued_at": created,
        "retry": _retry_view(job, job["max_attempts"] - rounds, ojs.get("retry", {})),
    }
    if arity is not None and len(job["args"]) > arity:
        view["parent_results"] = parent_results
    for key in ("timeout_ms", "visibility_timeout_ms", "tags", "unique", "schema", "expires_at"):
        if key in ojs:
            view[key] = ojs[key]
    for key in ("scheduled_at", "started_at", "next_attempt_at"):
        if job.get(key) is not None:
            view[key] = rfc3339(job[key])
    errors = [_error_view(entry) for entry in job.get("errors", ())]
    ended = job.get("completed_at")
    if ended is not None and state == "discarded" and errors and errors[-1]["code"] == "expired":
        view["discarded_at"] = rfc3339(ended)  # it never ran: nothing completed
    elif ended is not None:
        view[f"{state}_at"] = rfc3339(ended)
        if state != "cancelled":
            view["completed_at"] = rfc3339(ended)
    if state == "completed" and job.get("result") is not None:
        view["result"] = job["result"]
    if errors:
        last = job["errors"][-1]
        retry_at = last.get("retry_at", job.get("next_attempt_at"))
        if retry_at is not None and last.get("at") is not None:
            view["retry_delay_ms"] = max(0, round((retry_at - last["at"]) * 1000))
        view["errors"] = errors
        if state != "completed":
            view["error"] = errors[-1]
    return view


def _retry_view(job: dict[str, Any], max_attempts: int, kept: dict[str, Any]) -> dict[str, Any]:
    retry = job.get("retry", {})
    view = {
        "max_attempts": max_attempts,
        "initial_interval_ms": round(retry.get("initial_interval", 1.0) * 1000),
        "backoff_coefficient": retry.get("backoff_coefficient", 2.0),
        "max_interval_ms": round(retry.get("max_interval", 300.0) * 1000),
        "jitter": retry.get("jitter", True),
    }
    return {**view, **kept}


def _error_view(entry: dict[str, Any]) -> dict[str, Any]:
    view = {
        "code": entry.get("type", "error"),
        "type": entry.get("type", "error"),
        "message": entry.get("message", ""),
        "attempt": entry.get("attempt", 0),
    }
    if entry.get("at") is not None:
        view["occurred_at"] = rfc3339(entry["at"])
    return view
