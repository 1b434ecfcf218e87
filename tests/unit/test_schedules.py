"""The rules of a schedule (actors/schedules.py), pure: slots from cron in a time zone across
daylight-saving changes, fixed intervals, the overlap and misfire policies, pausing."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from actors import schedules
from actors.schedules import MISFIRE_GRACE_S, ScheduleError, due, pause, slot_after, start
from transport.messages import Schedule

RIGA = ZoneInfo("Europe/Riga")  # DST: 2026-03-29 03:00 -> 04:00, 2026-10-25 04:00 -> 03:00
JOB = {"type": "report"}


def at(*fields: int, zone: ZoneInfo = RIGA) -> float:
    return datetime(*fields, tzinfo=zone).timestamp()


def local(moment: float) -> str:
    return datetime.fromtimestamp(moment, RIGA).strftime("%m-%d %H:%M%z")


def runs(schedule: Schedule, after: float, count: int) -> list[str]:
    slots, moment = [], after
    for _ in range(count):
        moment = slot_after(schedule, moment)
        slots.append(local(moment))
    return slots


def test_a_daily_slot_in_the_hour_dst_skips_runs_once_right_after_the_change():
    daily = Schedule("d", JOB, cron="30 3 * * *", timezone="Europe/Riga")
    assert runs(daily, at(2026, 3, 28, 12, 0), 3) == [
        "03-29 04:00+0300",  # 03:30 does not exist that day: run at the change, once
        "03-30 03:30+0300",
        "03-31 03:30+0300",
    ]


def test_a_daily_slot_in_the_hour_dst_repeats_runs_once():
    daily = Schedule("d", JOB, cron="30 3 * * *", timezone="Europe/Riga")
    assert runs(daily, at(2026, 10, 24, 12, 0), 3) == [
        "10-25 03:30+0300",  # 03:30 happens twice that night: once only
        "10-26 03:30+0200",
        "10-27 03:30+0200",
    ]


def test_aliases_and_intervals():
    hourly = Schedule("h", JOB, cron="@hourly", timezone="Europe/Riga")
    assert runs(hourly, at(2026, 1, 1, 10, 15), 2) == ["01-01 11:00+0200", "01-01 12:00+0200"]
    assert slot_after(Schedule("e", JOB, every=90.0), 1000.0) == 1090.0


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"cron": "61 * * * *"}, "bad cron expression"),
        ({"cron": "* * 31 2 *"}, "bad cron expression"),
        ({"cron": "* * */20 * 1L"}, "never matches"),  # the 1st or 21st, also a last Monday
        ({"cron": "@fortnightly"}, "bad cron expression"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "unknown time zone"),
    ],
)
def test_a_schedule_that_cannot_be_is_refused_saying_why(fields, says):
    with pytest.raises(ScheduleError, match=says):
        schedules.check(Schedule("bad", JOB, **fields))


def test_each_slot_makes_one_job_with_the_slot_in_its_request_id_and_meta():
    entry = start(Schedule("e", {"type": "t", "meta": {"team": "ops"}}, every=60.0), 1000.0)
    assert entry.next_at == 1060.0
    assert due(entry, 1059.0, False) == (entry, None)
    after, fire = due(entry, 1060.5, False)
    assert fire is not None and fire.slot == 1060.0
    assert fire.request_id == "schedule:e:1060.000"
    assert fire.spec["meta"] == {"team": "ops", "schedule": "e", "slot": 1060.0}
    assert (after.next_at, after.fired) == (1120.0, 1)  # on its grid: no drift by the delay


def test_overlap_skip_makes_no_job_while_the_last_one_runs_and_allow_does():
    skip = start(Schedule("s", JOB, every=60.0), 0.0)
    after, fire = due(skip, 60.0, unfinished=True)
    assert fire is None and after.skipped == 1 and after.next_at == 120.0
    allow = start(Schedule("a", JOB, every=60.0, overlap="allow"), 0.0)
    assert due(allow, 60.0, unfinished=True)[1] is not None


def test_missed_slots_make_one_job_or_none_by_the_misfire_policy():
    down_until = 60.0 + 10 * 60.0  # ten slots missed while the coordinator was down
    once = start(Schedule("o", JOB, every=60.0), 0.0)
    after, fire = due(once, down_until, False)
    assert fire is not None and fire.slot == 60.0 and after.next_at == down_until + 60.0
    skip = start(Schedule("k", JOB, every=60.0, misfire="skip"), 0.0)
    after, fire = due(skip, down_until, False)
    assert fire is None and after.skipped == 1 and after.next_at == down_until + 60.0
    late_but_not_missed = due(skip, 60.0 + MISFIRE_GRACE_S, False)[1]
    assert late_but_not_missed is not None


def test_a_paused_schedule_makes_nothing_and_resumes_at_its_next_slot():
    entry = pause(start(Schedule("p", JOB, every=60.0), 0.0), True, 10.0)
    assert due(entry, 500.0, False) == (entry, None)
    resumed = pause(entry, False, 500.0)
    assert not resumed.paused and resumed.next_at == 560.0
