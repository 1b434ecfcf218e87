"""The OJS job envelope and corral's JobSpec and Job, one into the other (docs/OJS.md).

Pure: `job_spec` validates an OJS enqueue body into the JobSpec map of corral's wire; `ojs_job`
renders a corral Job map as the binding's job object. What corral has no field for (unknown
top-level fields, tags, the retry policy's OJS-only keys, the timeouts in milliseconds) travels
in the job's meta under RESERVED_META, so a job reads back as it was sent, through any gateway.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from nodes.gateway.errors import OjsError, invalid
from nodes.gateway.times import duration_s, rfc3339, timestamp_s

SPEC_VERSION = "1.0.0-rc.1"
RESERVED_META = "_ojs"
PRIORITY_RANGE = (-100, 100)
DEFAULT_MAX_ATTEMPTS = 3
BACKOFFS = ("exponential", "linear", "constant")
MAX_PATTERNS, MAX_PATTERN_CHARS = 64, 256  # non_retryable_errors: matched at every nack
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
    _retry(options.get("retry", options.get("retry_policy", body.get("retry"))), spec, ojs)
    ojs.setdefault("max_attempts", spec.get("max_attempts", DEFAULT_MAX_ATTEMPTS))
    _timing(options, body, now, spec, ojs)
    unique = options.get("unique", body.get("unique"))
    if unique is not None:
        spec["unique_key"] = _unique_key(unique, job_type, args, queue, meta)
        ojs["unique"] = unique
    rate = options.get("rate_limit")
    if rate is not None:
        _rate_limit(rate, queue, spec)
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


def _retry(policy: Any, spec: dict[str, Any], ojs: dict[str, Any]) -> None:
    """corral's max_attempts and retry map from an OJS retry policy; its OJS-only keys are kept."""
    if policy is None:
        return
    if not isinstance(policy, dict):
        raise _policy_error("retry must be an object")
    attempts = policy.get("max_attempts", DEFAULT_MAX_ATTEMPTS)
    if type(attempts) is not int or attempts < 1:
        raise _policy_error(f"retry.max_attempts must be an integer >= 1, got {attempts!r}")
    spec["max_attempts"] = attempts
    ojs["max_attempts"] = attempts  # corral adds a round of attempts at each dead-letter retry
    retry: dict[str, Any] = {}
    for key in ("initial_interval", "max_interval"):
        seconds = _interval(policy, key)
        if seconds is not None:
            retry[key] = seconds
    strategy = policy.get("backoff_strategy", policy.get("backoff", "exponential"))
    coefficient = policy.get("backoff_coefficient", 2.0)
    if isinstance(coefficient, bool) or not isinstance(coefficient, int | float):
        raise _policy_error("retry.backoff_coefficient must be a number")
    if coefficient < 1.0:
        raise _policy_error(f"retry.backoff_coefficient must be >= 1.0, got {coefficient}")
    if strategy == "constant":
        coefficient = 1.0
    elif strategy == "linear":
        retry["backoff"] = "linear"
    elif strategy != "exponential":
        raise _policy_error(f"retry.backoff_strategy {strategy!r} is not one of {BACKOFFS}")
    retry["backoff_coefficient"] = float(coefficient)
    jitter = policy.get("jitter", True)
    if not isinstance(jitter, bool):
        raise _policy_error("retry.jitter must be a boolean")
    retry["jitter"] = jitter
    spec["retry"] = retry
    kept = {k: policy[k] for k in ("non_retryable_errors", "on_exhaustion") if k in policy}
    patterns = kept.get("non_retryable_errors", [])
    if (
        not isinstance(patterns, list)
        or len(patterns) > MAX_PATTERNS
        or not all(isinstance(p, str) and len(p) <= MAX_PATTERN_CHARS for p in patterns)
    ):
        raise _policy_error(
            f"retry.non_retryable_errors must be a list of at most {MAX_PATTERNS} strings"
            f" of at most {MAX_PATTERN_CHARS} characters"
        )
    if kept:
        ojs["retry"] = kept


def _interval(policy: dict[str, Any], key: str) -> float | None:
    if f"{key}_ms" in policy:
        value = policy[f"{key}_ms"]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise _policy_error(f"retry.{key}_ms must be a number >= 0")
        return value / 1000.0
    if key in policy:
        try:
            return duration_s(policy[key], f"retry.{key}")
        except OjsError as exc:
            raise _policy_error(exc.message) from None
    return None


def _policy_error(message: str) -> OjsError:
    return OjsError(422, "invalid_request", message, kind="validation_error")


def _timing(
    options: dict[str, Any], body: dict[str, Any], now: float, spec: dict, ojs: dict
) -> None:
    """scheduled_at, the visibility timeout and the execution timeout."""
    when = options.get("scheduled_at", options.get("delay_until", body.get("scheduled_at")))
    if when is not None:
        at = timestamp_s(when, "scheduled_at", now)
        if at > now:
            spec["scheduled_at"] = at
    expires = options.get("expires_at", body.get("expires_at"))
    if expires is not None:
        spec["expires_at"] = timestamp_s(expires, "expires_at", now)
        ojs["expires_at"] = expires if not expires.startswith("+") else rfc3339(spec["expires_at"])
    visibility = _milliseconds(options, "visibility_timeout")
    execution = _milliseconds(options, "timeout")
    if execution is not None:
        ojs["timeout_ms"] = round(execution * 1000)
    if visibility is not None:
        ojs["visibility_timeout_ms"] = round(visibility * 1000)
    if visibility is not None:  # the lease: an attempt not acked within it (beats renew it)
        spec["timeout"] = visibility
    if execution is not None:  # the longest an attempt may run, beats or not
        spec["run_timeout"] = execution


def _milliseconds(options: dict[str, Any], key: str) -> float | None:
    """Seconds of `<key>_ms` (milliseconds) or `<key>` (an ISO duration), if given."""
    if f"{key}_ms" in options:
        value = options[f"{key}_ms"]
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise invalid(f"options.{key}_ms must be a number > 0", field=f"options.{key}_ms")
        return value / 1000.0
    if key in options and isinstance(options[key], str):
        return duration_s(options[key], f"options.{key}")
    return None


RATE_PERIODS = {"max_per_second": 1.0, "max_per_minute": 60.0, "max_per_hour": 3600.0}


def _rate_limit(rate: Any, queue: str, spec: dict[str, Any]) -> None:
    """`rate_limit: {max_per_second | max_per_minute | max_per_hour: n, key?}`: corral's rate
    limit (extension "Limits"), counted per key; without one, per queue."""
    given = [k for k in RATE_PERIODS if isinstance(rate, dict) and k in rate]
    if len(given) != 1:
        raise invalid(f"rate_limit needs exactly one of {', '.join(RATE_PERIODS)}")
    count = rate[given[0]]
    if type(count) is not int or count < 1:
        raise invalid(f"rate_limit.{given[0]} must be an integer >= 1")
    key = rate.get("key", f"ojs-queue:{queue}")
    if not isinstance(key, str) or not key:
        raise invalid("rate_limit.key must be a non-empty string")
    spec["concurrency_key"] = key
    spec["rate_limit"] = {"count": count, "per": RATE_PERIODS[given[0]]}


def conflict_policy(spec: dict[str, Any]) -> str:
    """What an enqueue does when a live job holds its unique key: reject (409), ignore (the
    existing job, 200) or replace (cancel it, then enqueue)."""
    unique = spec["meta"].get(RESERVED_META, {}).get("unique") or {}
    return unique.get("on_conflict", "reject")


def _unique_key(unique: Any, job_type: str, args: list, queue: str, meta: dict) -> str:
    """One key per distinct value of the fields `unique.keys` names (default type and args)."""
    if not isinstance(unique, dict):
        raise invalid("unique must be an object", field="unique")
    if unique.get("on_conflict", "reject") not in ("reject", "ignore", "replace"):
        raise invalid("unique.on_conflict must be reject, ignore or replace", field="unique")
    keys = unique.get("keys", ["type", "args"])
    fields = {"type": job_type, "args": args, "queue": queue, "meta": meta}
    if not isinstance(keys, list) or not all(k in fields for k in keys):
        raise invalid("unique.keys must list some of type, args, queue, meta", field="unique")
    text = json.dumps([fields[k] for k in keys], sort_keys=True, separators=(",", ":"))
    return "ojs:" + hashlib.sha256(text.encode()).hexdigest()


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
