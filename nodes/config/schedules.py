"""The coordinator's `schedules:` key: periodic jobs defined in the YAML.

    schedules:
      - name: nightly-report
        cron: "0 3 * * *"          # or `every: 300` (seconds); aliases such as @hourly
        timezone: Europe/Paris      # default UTC
        overlap: skip               # skip (default) | allow
        misfire: once               # once (default) | skip
        job: {type: report, args: [daily], queue: reports}

Each entry is checked as a `schedule_put` request's schedule would be (the same validation,
then the cron expression and the time zone), so a mistake is refused at load with its place.
"""

from __future__ import annotations

from typing import Any

import msgpack

from actors.schedules import ScheduleError, check
from nodes.config.fields import Where
from transport.errors import BadRequest
from transport.messages import Schedule
from transport.validation.limits import DEFAULT_LIMITS
from transport.validation.schedules import schedule


def parse_schedules(value: Any, where: Where, name: str) -> tuple[Schedule, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise where.error("expected a list of schedules", name)
    parsed: dict[str, Schedule] = {}
    for index, raw in enumerate(value):
        at = f"{name}[{index}]"
        try:
            one = check(schedule(raw, DEFAULT_LIMITS))
            msgpack.packb(one.job)  # what the wire could not carry (a YAML date, say)
        except (BadRequest, ScheduleError) as exc:
            raise where.error(str(getattr(exc, "message", exc)), at) from None
        except (TypeError, ValueError) as exc:
            raise where.error(f"its job holds a value a job cannot carry: {exc}", at) from None
        if one.name in parsed:
            raise where.error(f"a second schedule named {one.name!r}", at)
        parsed[one.name] = one
    return tuple(parsed.values())
