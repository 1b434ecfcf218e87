"""Job types and JobSpec maps as clients build them (`Client.enqueue`, schedules,
`@worker.handler` defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JOB_OPTIONS = frozenset(
    {
        "queue",
        "priority",
        "scheduled_at",
        "max_attempts",
        "retry",
        "timeout",
        "route",
        "unique_key",
        "meta",
        "concurrency_key",  # the limit fields (docs/PROTOCOL.md extension "Limits")
        "concurrency_limit",
        "rate_limit",
        "depends_on",  # the jobs it waits for (docs/PROTOCOL.md extension "Workflows")
        "on_failure",
        "pass_results",
        "id",  # the job's own id, chosen by the client (docs/PROTOCOL.md extension "Job ids")
        "expires_at",  # no attempt starts from then on (docs/PROTOCOL.md extension "Expiry")
        "run_timeout",  # one attempt's longest run (docs/PROTOCOL.md extension "Run timeout")
    }
)


@dataclass(frozen=True)
class JobType:
    """A job type with default JobSpec options (set by `@worker.handler(type, **defaults)`)."""

    name: str
    defaults: dict[str, Any] = field(default_factory=dict)


def job_spec(
    job_type: str, args: list[Any] | tuple[Any, ...] = (), **options: Any
) -> dict[str, Any]:
    """Build a JobSpec map, refusing options the protocol does not know."""
    unknown = set(options) - JOB_OPTIONS
    if unknown:
        raise TypeError(f"unknown job options: {', '.join(sorted(unknown))}")
    spec = {"type": job_type, "args": list(args)}
    spec.update({key: value for key, value in options.items() if value is not None})
    return spec
