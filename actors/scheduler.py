"""SchedulerActor: the coordinator's schedules (actors/schedules.py), each a store setting.

Each reaper tick it asks every schedule whether a slot came due, and makes the job of one that
did (actors/admission.py, as an enqueue does) before it saves the schedule's next slot: the
writer commits in order, so a crash never leaves a slot marked done without its job. The job
carries the request id of its slot, so a slot made again after a crash between the two is a
replay of the first job, not a second one. Definitions come from the coordinator's YAML (kept
in step at each start) and from `schedule_put` / `schedule_remove` / `schedule_pause`
requests (docs/PROTOCOL.md, Extensions).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import msgpack

from actors import schedules, states
from actors.admission import admit
from actors.base import CorralActor
from actors.context import CoordinatorContext
from actors.mail import Inbound, Tick
from actors.schedules import Entry, Schedule, ScheduleError
from actors.store.base import Replay
from transport import codec
from transport import messages as m
from transport.errors import BadRequest
from transport.validation.jobs import job_spec

log = logging.getLogger(__name__)
PREFIX = "schedule:"
NEXT_RUNS = 3  # slots `schedules` lists per schedule


def key(name: str) -> str:
    return PREFIX + name


def encode(entry: Entry) -> bytes:
    fields = asdict(entry)
    return msgpack.packb(fields, use_bin_type=True)


def decode(blob: bytes) -> Entry:
    fields = msgpack.unpackb(blob, raw=False)
    return Entry(**{**fields, "schedule": Schedule(**fields["schedule"])})


def view(entry: Entry) -> dict[str, Any]:
    """A schedule as `schedules` lists it."""
    return {
        **{k: v for k, v in asdict(entry.schedule).items() if v is not None},
        "paused": entry.paused,
        "next_runs": [] if entry.paused else schedules.next_slots(entry, NEXT_RUNS),
        "last_job_id": entry.last_job_id,
        "fired": entry.fired,
        "skipped": entry.skipped,
    }


class SchedulerActor(CorralActor):
    """Owns every schedule; fires them on the reaper's ticks."""

    def __init__(
        self, activity: Any, ctx: CoordinatorContext, configured: tuple[Schedule, ...] = ()
    ) -> None:
        super().__init__(activity)
        self.ctx = ctx
        self.entries: dict[str, Entry] = {}
        for name, blob in ctx.store.settings().items():
            if name.startswith(PREFIX):
                try:
                    self.entries[name.removeprefix(PREFIX)] = decode(blob)
                except (ValueError, TypeError, KeyError) as exc:
                    log.error("schedule %s is unreadable and is ignored: %s", name, exc)
        now = ctx.clock.now()
        for schedule in configured:  # the YAML wins over what an earlier run saved
            held = self.entries.get(schedule.name)
            if held is None:
                self._save(schedules.start(schedule, now))
            elif held.schedule != schedule:
                self._save(schedules.redefine(held, schedule, now))

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        return {Tick: self._tick, Inbound: self._inbound}

    def _save(self, entry: Entry) -> None:
        self.entries[entry.schedule.name] = entry
        self.ctx.store.put_setting(key(entry.schedule.name), encode(entry))

    def _tick(self, message: Tick) -> None:
        for name in sorted(self.entries):
            entry = self.entries[name]
            if entry.paused or entry.next_at > message.now:
                continue
            after, fire = schedules.due(entry, message.now, self._unfinished(entry))
            if fire is not None:
                after = self._make(after, fire)
            self._save(after)

    def _unfinished(self, entry: Entry) -> bool:
        if entry.last_job_id is None:
            return False
        stored = self.ctx.store.get(entry.last_job_id)
        return stored is not None and stored["state"] not in states.TERMINAL_STATES

    def _make(self, entry: Entry, fire: schedules.Fire) -> Entry:
        try:
            spec = job_spec(fire.spec)
            outcome = admit(self.ctx, [spec], fire.request_id)
        except (BadRequest, LookupError) as exc:
            log.error("schedule %s: its job cannot be made: %s", fire.name, exc)
            return entry
        job_id = outcome.jobs[0]["id"] if isinstance(outcome, Replay) else outcome.ids[0]
        if isinstance(outcome, Replay) or outcome.duplicate[0]:
            log.info("schedule %s: slot %.0f already made job %s", fire.name, fire.slot, job_id)
        return schedules.made(entry, job_id)

    # -- requests -----------------------------------------------------------------------------

    def _inbound(self, message: Inbound) -> None:
        request, ctx = message.request, self.ctx
        try:
            body = self._answer(request)
        except ScheduleError as exc:
            ctx.outbox(message.peer, codec.error("bad_request", str(exc), request.rid))
            return
        frame = codec.reply(request.rid, **body)
        ctx.store.after_commit(lambda: ctx.outbox(message.peer, frame))

    def _answer(self, request: Any) -> dict[str, Any]:
        now = self.ctx.clock.now()
        if isinstance(request, m.SchedulePut):
            held = self.entries.get(request.schedule.name)
            entry = (
                schedules.start(request.schedule, now)
                if held is None
                else schedules.redefine(held, request.schedule, now)
            )
            self._save(entry)
            return {"schedule": view(entry)}
        if isinstance(request, m.SchedulesList):
            return {"schedules": [view(self.entries[name]) for name in sorted(self.entries)]}
        held = self.entries.get(request.name)
        if held is None:
            raise ScheduleError(f"no schedule {request.name!r}")
        if isinstance(request, m.ScheduleRemove):
            del self.entries[request.name]
            self.ctx.store.put_setting(key(request.name), None)
            return {"removed": request.name}
        entry = schedules.pause(held, request.paused, now)
        self._save(entry)
        return {"schedule": view(entry)}
