"""The options of an OJS job as corral fields: the retry policy, times and timeouts, the
unique key and the rate limit (nodes/gateway/envelope.py builds the rest of the JobSpec)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from nodes.gateway.errors import OjsError, invalid
from nodes.gateway.times import duration_s, rfc3339, timestamp_s

DEFAULT_MAX_ATTEMPTS = 3
BACKOFFS = ("exponential", "linear", "constant")
MAX_PATTERNS, MAX_PATTERN_CHARS = 64, 256  # non_retryable_errors: matched at every nack


def retry_policy(policy: Any, spec: dict[str, Any], ojs: dict[str, Any]) -> None:
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


def timing(
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


def rate_limit(rate: Any, queue: str, spec: dict[str, Any]) -> None:
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


def unique_key(unique: Any, job_type: str, args: list, queue: str, meta: dict) -> str:
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
