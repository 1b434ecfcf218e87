"""Periodic jobs: the rules of a schedule, pure (they take `now` and return what to do).

A schedule names a job (a JobSpec map) and when to make it: a cron expression (5 fields, or an
alias such as `@hourly`) read in a time zone, or a fixed interval in seconds. Each time a slot
comes due the coordinator makes one job (actors/scheduler.py). Slots are read by cronsim,
which follows Debian's cron across daylight-saving changes: a slot in an hour that is skipped
runs right after the change, a slot in an hour that repeats runs once, so a change never runs
a slot twice or drops it.

Two policies:
- `overlap`: `skip` (the default) makes no job for a slot while the job of the previous slot
  is still unfinished, so slow runs never pile up; `allow` makes one for every slot.
- `misfire`: what a coordinator that was down (or a schedule that was paused) does about the
  slots it missed, found more than MISFIRE_GRACE_S late: `once` (the default) makes one job
  for all of them, `skip` makes none and waits for the next slot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from transport.messages import Schedule

MISFIRE_GRACE_S = 60.0  # a slot found later than this was missed (the coordinator was down)
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class ScheduleError(ValueError):
    """A schedule that cannot be: the message says which field and why."""


@dataclass(frozen=True)
class Entry:
    """A schedule and where it stands: durable (actors/scheduler.py keeps one store setting
    per schedule)."""

    schedule: Schedule
    next_at: float  # the next slot (UNIX seconds)
    paused: bool = False
    last_job_id: str | None = None  # the job of the last slot that made one
    fired: int = 0  # jobs made so far
    skipped: int = 0  # slots that made no job (overlap, misfire)


@dataclass(frozen=True)
class Fire:
    """Make the job of `slot` for schedule `name` (request id `request_id`: a slot made again,
    after a crash between making its job and saving the entry, is a replay, not a second job)."""

    name: str
    slot: float
    request_id: str
    spec: dict[str, Any] = field(default_factory=dict)


def check(schedule: Schedule) -> Schedule:
    """The schedule, or ScheduleError when its time zone or cron expression cannot be read
    (the fields' shapes are validated with the request: transport.validation.schedules)."""
    zone(schedule.timezone)
    if schedule.cron is not None:
        slot_after(schedule, 0.0)
    return schedule


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r} (an IANA name: Europe/Paris)") from None


def slot_after(schedule: Schedule, moment: float) -> float:
    """The schedule's first slot strictly after `moment`."""
    if schedule.every is not None:
        return moment + schedule.every
    expression = ALIASES.get(str(schedule.cron).strip().lower(), schedule.cron)
    start = datetime.fromtimestamp(moment, zone(schedule.timezone))
    try:
        return next(CronSim(str(expression), start)).timestamp()
    except CronSimError as exc:
        raise ScheduleError(f"bad cron expression {schedule.cron!r}: {exc}") from None
    except StopIteration:
        raise ScheduleError(f"cron expression {schedule.cron!r} never matches") from None


def next_slots(entry: Entry, count: int) -> list[float]:
    """The next `count` slots from the entry's next one (for `corral schedule list`)."""
    slots = [entry.next_at]
    while len(slots) < count:
        slots.append(slot_after(entry.schedule, slots[-1]))
    return slots


def start(schedule: Schedule, now: float) -> Entry:
    """A new schedule: its first slot is the first after `now`."""
    return Entry(check(schedule), slot_after(schedule, now))


def redefine(entry: Entry, schedule: Schedule, now: float) -> Entry:
    """The entry with a new definition; the next slot is recomputed from `now`."""
    return replace(entry, schedule=check(schedule), next_at=slot_after(schedule, now))


def pause(entry: Entry, paused: bool, now: float) -> Entry:
    """Pause, or resume from `now`: the slots missed while paused follow the misfire policy
    only if the next slot were already past, so a resumed schedule starts at its next slot."""
    if paused or not entry.paused:
        return replace(entry, paused=paused)
    return replace(entry, paused=False, next_at=slot_after(entry.schedule, now))


def due(entry: Entry, now: float, unfinished: bool) -> tuple[Entry, Fire | None]:
    """The entry after `now`, and the job to make if a slot came due. `unfinished`: the job
    of the last slot that made one has not ended yet."""
    if entry.paused or entry.next_at > now:
        return entry, None
    schedule, slot = entry.schedule, entry.next_at
    following = _following(schedule, slot, now)
    missed = now - slot > MISFIRE_GRACE_S
    if (missed and schedule.misfire == "skip") or (unfinished and schedule.overlap == "skip"):
        return replace(entry, next_at=following, skipped=entry.skipped + 1), None
    request_id = f"schedule:{schedule.name}:{slot:.3f}"
    meta = {**schedule.job.get("meta", {}), "schedule": schedule.name, "slot": slot}
    fire = Fire(schedule.name, slot, request_id, {**schedule.job, "meta": meta})
    return replace(entry, next_at=following, fired=entry.fired + 1), fire


def _following(schedule: Schedule, slot: float, now: float) -> float:
    """The first slot after `now` on the schedule's own grid: an interval counts from its
    slots, not from when a tick found them (which would make it drift by each tick's delay)."""
    if schedule.every is None:
        return slot_after(schedule, now)
    return slot + schedule.every * (math.floor((now - slot) / schedule.every) + 1)


def made(entry: Entry, job_id: str) -> Entry:
    """The entry once the job of its last slot exists (its id, for the overlap rule)."""
    return replace(entry, last_job_id=job_id)
