"""The schedule requests of a client (docs/PROTOCOL.md, Extensions), as `Client` methods."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nodes.job_types import job_spec


class ScheduleRequests:
    """Mixed into `Client`: periodic jobs the coordinator makes (actors/schedules.py)."""

    request: Callable[..., dict[str, Any]]

    def put_schedule(
        self,
        name: str,
        job_type: str,
        args: list[Any] | tuple[Any, ...] = (),
        *,
        cron: str | None = None,
        every: float | None = None,
        timezone: str = "UTC",
        overlap: str = "skip",
        misfire: str = "once",
        **options: Any,
    ) -> dict[str, Any]:
        """Create or replace schedule `name`: a job of `job_type` (options are JobSpec fields)
        at each slot of `cron` (5 fields or @hourly-style, read in `timezone`) or `every`
        seconds. Returns the schedule with its next runs. Needs the admin role."""
        schedule: dict[str, Any] = {
            "name": name,
            "job": job_spec(job_type, args, **options),
            "timezone": timezone,
            "overlap": overlap,
            "misfire": misfire,
        }
        if cron is not None:
            schedule["cron"] = cron
        if every is not None:
            schedule["every"] = every
        return self.request("schedule_put", schedule=schedule)["schedule"]

    def schedules(self) -> list[dict[str, Any]]:
        """Every schedule, by name, with its next runs and what it made."""
        return self.request("schedules")["schedules"]

    def remove_schedule(self, name: str) -> None:
        self.request("schedule_remove", name=name)

    def pause_schedule(self, name: str) -> dict[str, Any]:
        return self.request("schedule_pause", name=name)["schedule"]

    def resume_schedule(self, name: str) -> dict[str, Any]:
        """Resume: the next slot after now (slots missed while paused are not made)."""
        return self.request("schedule_resume", name=name)["schedule"]
