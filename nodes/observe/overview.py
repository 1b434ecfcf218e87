"""The dashboard's data: one overview of the coordinator as plain data, read through an
`InProcessClient` (the store, and one in-process `stats` request per view). The page
(`nodes.observe.page`) renders it, and `/api/overview` serves it as JSON."""

from __future__ import annotations

from typing import Any

from nodes.inprocess import InProcessClient
from nodes.observe.formatting import last_error
from transport.errors import CorralError

FAILURES_SHOWN = 20
DEAD_SHOWN = 50


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
