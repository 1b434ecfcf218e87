"""Small text helpers shared by the terminal views and the dashboard (pure functions)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from transport.jobspec import JOB_STATES

QUEUE_STATES = JOB_STATES  # a queue's counts, one per job state
DEFERRED = "deferred"  # waiting for other jobs (workflows): a column only when some are


def shown_states(queues: dict[str, dict[str, int]]) -> tuple[str, ...]:
    """The states a queue table shows: every one, but `deferred` only when a job is."""
    if any(counts.get(DEFERRED) for counts in queues.values()):
        return QUEUE_STATES
    return tuple(state for state in QUEUE_STATES if state != DEFERRED)
WAITING_STATES = ("scheduled", "available", "retryable")
LIVE = "live"


def format_ago(seconds: float) -> str:
    """`4.2s ago`, `3m ago`, `1.5h ago`, `2.0d ago`."""
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.1f}s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m ago"
    if seconds < 86_400:
        return f"{seconds / 3600:.1f}h ago"
    return f"{seconds / 86_400:.1f}d ago"


def format_in(seconds: float) -> str:
    """`in 4.2s`, `in 3m` (a time still to come)."""
    return "in " + format_ago(seconds).removesuffix(" ago")


def format_time(at: float) -> str:
    """A UNIX time as local ISO-like `YYYY-MM-DD HH:MM:SS.mmm`, for log lines."""
    return datetime.fromtimestamp(at).isoformat(sep=" ", timespec="milliseconds")


def format_when(at: float | None, now: float) -> str:
    """A UNIX time as local `YYYY-MM-DD HH:MM:SS` plus how long ago (or until)."""
    if at is None:
        return "-"
    stamp = datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")
    relative = format_ago(now - at) if at <= now else format_in(at - now)
    return f"{stamp} ({relative})"


def format_labels(labels: dict[str, list[str]]) -> str:
    return "; ".join(f"{k}={','.join(v)}" for k, v in sorted(labels.items())) or "-"


def format_value(value: Any) -> str:
    """Job args and results as compact JSON; bytes shown as text so nothing fails to print."""

    def fallback(obj: Any) -> Any:
        if isinstance(obj, bytes):
            return obj.decode("utf-8", errors="replace")
        return repr(obj)

    return json.dumps(value, default=fallback, ensure_ascii=False)


def last_error(job: dict[str, Any]) -> dict[str, Any] | None:
    errors = job.get("errors") or []
    return errors[-1] if errors else None


def error_text(error: dict[str, Any] | None) -> str:
    if not error:
        return ""
    return f"{error.get('type')}: {error.get('message')}"


def pending_directive(worker: dict[str, Any]) -> str | None:
    """`quiet (pending, by 12:00:05)`: a `direct` the worker has not taken up yet, and when its
    next beat (whose reply carries it) is due, from the `stats` extensions; None when none."""
    directed = worker.get("directed")
    if not directed or directed == worker["state"]:
        return None
    by = worker.get("next_beat_by")
    when = f", by {datetime.fromtimestamp(by):%H:%M:%S}" if isinstance(by, int | float) else ""
    return f"{directed} (pending{when})"


def live_workers(workers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [w for w in workers if w.get("state") != "terminated"]


def sorted_workers(workers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Live workers first, then the terminated ones, each by id."""
    return sorted(workers, key=lambda w: (w["state"] == "terminated", w["worker_id"]))
