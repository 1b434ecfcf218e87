"""The dashboard's data: one overview of the coordinator as plain data, read through an
`InProcessClient` (the store, and one in-process `stats` request per view). The page
(`nodes.observe.page`) renders it, and `/api/overview` serves it as JSON.

Also the rows of "In progress" (extension "Progress"), which `corral status` shows too.
"""

from __future__ import annotations

import math
from typing import Any

from nodes.inprocess import InProcessClient
from nodes.observe.formatting import last_error, live_workers
from transport.errors import CorralError

FAILURES_SHOWN = 20
DEAD_SHOWN = 50
PROGRESS_SHOWN = 20  # "In progress" rows, on the dashboard and in `corral status`
PROGRESS_MESSAGE_CHARS = 200  # the protocol's limit: a longer message (not ours) is clipped


def job_summary(job: dict[str, Any]) -> dict[str, Any]:
    """What a dashboard row shows of a job (no args or result: they may be large)."""
    return {
        "id": job["id"],
        "type": job["type"],
        "queue": job["queue"],
        "state": job["state"],
        "attempt": job.get("attempt", 0),
        "max_attempts": job.get("max_attempts"),
        "created_at": job.get("created_at"),
        "completed_at": job.get("completed_at"),
        "next_attempt_at": job.get("next_attempt_at"),
        "errors": len(job.get("errors") or []),
        "error": last_error(job),
        "schedule": (job.get("meta") or {}).get("schedule"),  # made by a schedule: its name
        "workflow": job.get("workflow_id"),  # a step of a workflow: its id
    }


def overview(client: InProcessClient, *, admin: bool) -> dict[str, Any]:
    """Everything the page shows, as plain data (also served as `/api/overview`)."""
    view: dict[str, Any] = {"now": client.now(), "admin": admin, "error": None}
    try:
        stats = client.stats(series=True)
    except CorralError as exc:  # a stuck supervisor must not take the page down with it
        view["error"] = f"no stats from the coordinator: {exc.message}"
        try:
            counts = client.ctx.store.counts()
        except CorralError:  # a standby serves no store: the leader's dashboard has them
            counts = {}
        stats = {"queues": counts, "workers": [], "unroutable": {}, "limited": {}, "paused": []}
    view.update(stats)

    def held(state: str, most: int) -> list[dict[str, Any]]:
        # The counts say how many there are: no walk of the store for none, and the walk
        # (newest first) stops as soon as it has found them all.
        count = sum(counts.get(state, 0) for counts in stats["queues"].values())
        return client.jobs(state=state, limit=min(most, count)) if count else []

    failing = held("retryable", FAILURES_SHOWN)
    dead = held("discarded", max(FAILURES_SHOWN, DEAD_SHOWN))

    def failed_at(job: dict[str, Any]) -> float:
        error = last_error(job)
        return float(error["at"]) if error else float(job.get("created_at") or 0.0)

    recent = sorted(failing + dead, key=failed_at, reverse=True)[:FAILURES_SHOWN]
    view["failures"] = [job_summary(job) for job in recent]
    view["dead"] = [job_summary(job) for job in sorted(dead, key=failed_at, reverse=True)]
    return view


def clip(text: str, most: int) -> str:
    """`text` on one line of at most `most` characters, ending in `…` when cut; control
    characters (newlines, terminal escapes) become spaces: a handler wrote it."""
    line = "".join(c if c.isprintable() else " " for c in text)
    return line if len(line) <= most else line[: most - 1] + "…"


def percent(fraction: float) -> int:
    """Whole percent, rounded down: 99.9% done shows 99, never a premature 100."""
    return min(100, max(0, math.floor(fraction * 100 + 1e-9)))  # 0.29 * 100 = 28.999...


def _number(value: Any) -> float | None:
    """`value` as a finite float, or None (a bool, text, NaN, an int too big for a float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def reported(progress: Any) -> dict[str, Any] | None:
    """One progress report (`{fraction, message, updated_at, attempt}`) made safe to show:
    the fraction a number within [0, 1], the message clipped one-line text, `updated_at` a
    number or None. None when it is not a report at all (another coordinator's may differ)."""
    if not isinstance(progress, dict):
        return None
    fraction = _number(progress.get("fraction"))
    return {
        "fraction": 0.0 if fraction is None else min(1.0, max(0.0, fraction)),
        "message": clip(str(progress.get("message") or ""), PROGRESS_MESSAGE_CHARS),
        "updated_at": _number(progress.get("updated_at")),
        "attempt": progress.get("attempt"),
    }


def progress_rows(workers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every job a live worker reports progress of (a `stats` worker's `progress` map), by
    worker (its name, else its id) then job id: the report with `job_id`, `worker_id` and
    `worker` (the name shown)."""
    rows = []
    for w in live_workers(workers):
        progress = w.get("progress")
        if not isinstance(progress, dict):
            continue
        for job_id, entry in progress.items():
            report = reported(entry)
            if report is not None:
                worker_id = str(w.get("worker_id"))
                shown = str(w.get("name") or worker_id)
                rows.append(
                    {"job_id": str(job_id), "worker_id": worker_id, "worker": shown, **report}
                )
    return sorted(rows, key=lambda r: (r["worker"], r["worker_id"], r["job_id"]))
