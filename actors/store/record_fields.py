"""The compound fields at the end of a job record (actors.store.record): a job's limit, flow and
deadlines, each packed as a short array (nil when the job has none), recognised when a record
is checked, and turned back into the keys of its Job map.

| field | schema | array |
|---|---|---|
| `limit` | 5 | [key, concurrency, rate count, rate per], nils for what is unset |
| `flow` | 6 | [depends_on, on_failure, pass_results, workflow] |
| `deadlines` | 7 | [expires_at, run_timeout], nils for what is unset |
"""

from __future__ import annotations

from typing import Any

from actors.jobs import Job
from transport.jobspec import Flow, JobLimit, Rate


def pack_limit(limit: JobLimit) -> list[Any]:
    rate = limit.rate
    if rate is None:
        return [limit.key, limit.concurrency, None, None]
    return [limit.key, limit.concurrency, rate.count, rate.per]


def pack_flow(flow: Flow) -> list[Any]:
    return [flow.depends_on, flow.on_failure, flow.pass_results, flow.workflow]


def pack_deadlines(job: Job) -> list[Any]:
    """docs/PROTOCOL.md extensions "Expiry" and "Run timeout" (a job with neither packs nil)."""
    return [job.expires_at, job.run_timeout]


def is_limit(value: Any) -> bool:
    return value is None or (isinstance(value, list) and len(value) == 4)


def is_flow(value: Any) -> bool:
    return value is None or (
        isinstance(value, list) and len(value) == 4 and isinstance(value[0], list)
    )


def is_deadlines(value: Any) -> bool:
    return value is None or (isinstance(value, list) and len(value) == 2)


def limit_wire(packed: list[Any]) -> dict[str, Any]:
    """The limit's keys of the Job map (JobLimit.to_wire)."""
    key, concurrency, count, per = packed
    rate = None if count is None else Rate(count, per)
    return JobLimit(key, concurrency, rate).to_wire()


def flow_wire(packed: list[Any], request_id: str | None) -> dict[str, Any]:
    """The flow's keys of the Job map (Flow.to_wire: a workflow's id is its request id)."""
    depends_on, on_failure, pass_results, workflow = packed
    return Flow(tuple(depends_on), on_failure, pass_results, workflow).to_wire(request_id)


def deadlines_wire(packed: list[Any]) -> dict[str, Any]:
    """`expires_at` and `run_timeout` as the Job map has them: each only when set."""
    expires_at, run_timeout = packed
    wire: dict[str, Any] = {}
    if expires_at is not None:
        wire["expires_at"] = expires_at
    if run_timeout is not None:
        wire["run_timeout"] = run_timeout
    return wire
