"""Which live workers could take a job, from a `stats` reply: so the CLI can say, instead of
waiting forever in silence, that no worker handles a job's type, queue or route labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actors.routing import WorkerProfile, eligible, route_class

TAKING_STATES = ("running",)  # a quiet worker fetches nothing until it is resumed


def no_taker(job_type: str, queue: str, route: Mapping[str, str], workers: list[Any]) -> str | None:
    """None when a running worker of `workers` (the `stats` entries) may take the job; else a
    sentence saying so and what the live workers do handle."""
    live = [w for w in workers if w.get("state") != "terminated"]
    job_class = route_class(job_type, route)
    for worker in live:
        profile = WorkerProfile.build(
            str(worker.get("worker_id")),
            worker.get("queues") or (),
            worker.get("functions") or (),
            worker.get("labels") or {},
        )
        if worker.get("state") in TAKING_STATES and eligible(profile, queue, job_class):
            return None
    routed = f", route {_pairs(route)}" if route else ""
    what = f"no running worker can take it (type {job_type!r}, queue {queue!r}{routed})"
    if not live:
        return f"{what}: no worker is connected"
    return f"{what}; live workers handle: " + "; ".join(_handles(w) for w in live)


def _handles(worker: Mapping[str, Any]) -> str:
    name = worker.get("name")
    who = f"{worker.get('worker_id')}" + (f" ({name})" if name else "")
    functions = ", ".join(worker.get("functions") or ()) or "any type"
    parts = [f"queues {', '.join(worker.get('queues') or ())}", f"functions {functions}"]
    labels = worker.get("labels") or {}
    if labels:
        parts.append("labels " + ", ".join(f"{k}={'|'.join(v)}" for k, v in sorted(labels.items())))
    if worker.get("state") not in TAKING_STATES:
        parts.append(f"state {worker.get('state')}")
    return f"{who}: " + ", ".join(parts)


def _pairs(route: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(route.items()))
