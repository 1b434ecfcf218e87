"""Leadership: which of several coordinators sharing one database serves, as one table.

    standby --acquired--> promoting --promoted--> leading
    promoting / leading --refused | lapsed | deposed--> standby
    any --stop--> stopped

The lease lives in the database (actors/store/lease.py): a row with a term and an expiry
measured by the database's clock. A standby polls it and takes it once it lapsed, which makes
a new term; the leader renews it every third of `ttl`. The leader also keeps a local bound,
`valid_until` = the local time it *sent* its last successful acquire or renew + `ttl` x
LOCAL_MARGIN: the database set the expiry after that moment, so once the local bound passes the
leader stops serving before any standby can have taken over, even if it was frozen (SIGSTOP)
and has not yet heard of the new term. The hard guarantee is the store's fencing: every batch
it commits names its term, and a batch of an old term never lands (DEPOSED comes from there).

The core is pure: it takes `now` and returns effects for the shell (nodes/leadership/) to
perform. Every (role, event) pair missing from TRANSITIONS cannot happen and raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

FAILOVER_TIMEOUT_S = 3.0  # the lease's ttl (config `failover_timeout`): a dead leader's successor
# takes over within about this
LOCAL_MARGIN = 0.9  # of ttl: room for the two clocks' rates to differ while a lease runs
RENEWALS_PER_TTL = 3  # the leader renews three times per ttl: two renewals may fail in a row
POLLS_PER_TTL = 5  # a standby looks at the lease five times per ttl


class Role(Enum):
    STANDBY = "standby"  # polls the lease; answers `not_leader`
    PROMOTING = "promoting"  # holds the lease; loads the store and starts the actors
    LEADING = "leading"  # serves
    STOPPED = "stopped"  # the node stopped; nothing more happens


class Event(Enum):
    TICK = "tick"  # the timer: poll (standby) or renew (promoting, leading)
    ACQUIRED = "acquired"  # the poll took the lease: a new term
    NOT_ACQUIRED = "not_acquired"  # another coordinator holds the lease
    PROMOTED = "promoted"  # the store of our term is loaded and the actors run
    PROMOTE_FAILED = "promote_failed"  # opening the store of our term failed
    STALE = "stale"  # a promotion or store signal of an earlier term
    RENEWED = "renewed"  # our lease was extended
    REFUSED = "refused"  # the renewal found another term: someone took over
    LEASE_ERROR = "lease_error"  # the database could not be reached
    LAPSED = "lapsed"  # our local bound passed without a renewal
    DEPOSED = "deposed"  # the store's fencing refused a batch of our term
    STOP = "stop"  # the node stops: release the lease if we hold it


R, E = Role, Event
IGNORED = None
# Signals about one term: one for a term we no longer hold is STALE (a late promotion, a
# renewal answered after a step-down, a fenced store of an earlier term).
TERM_EVENTS = frozenset({Event.PROMOTED, Event.PROMOTE_FAILED, Event.RENEWED, Event.REFUSED,
                         Event.DEPOSED})

TRANSITIONS: dict[tuple[Role, Event], Role | None] = {
    (R.STANDBY, E.TICK): R.STANDBY,
    (R.STANDBY, E.ACQUIRED): R.PROMOTING,
    (R.STANDBY, E.NOT_ACQUIRED): R.STANDBY,
    (R.STANDBY, E.LEASE_ERROR): R.STANDBY,
    (R.STANDBY, E.STALE): R.STANDBY,  # a promotion that finished after we stepped down
    (R.STANDBY, E.STOP): R.STOPPED,
    (R.PROMOTING, E.TICK): R.PROMOTING,
    (R.PROMOTING, E.PROMOTED): R.LEADING,
    (R.PROMOTING, E.PROMOTE_FAILED): R.STANDBY,
    (R.PROMOTING, E.RENEWED): R.PROMOTING,
    (R.PROMOTING, E.REFUSED): R.STANDBY,
    (R.PROMOTING, E.LEASE_ERROR): R.PROMOTING,
    (R.PROMOTING, E.LAPSED): R.STANDBY,
    (R.PROMOTING, E.DEPOSED): R.STANDBY,
    (R.PROMOTING, E.STALE): R.PROMOTING,
    (R.PROMOTING, E.STOP): R.STOPPED,
    (R.LEADING, E.TICK): R.LEADING,
    (R.LEADING, E.RENEWED): R.LEADING,
    (R.LEADING, E.REFUSED): R.STANDBY,
    (R.LEADING, E.LEASE_ERROR): R.LEADING,
    (R.LEADING, E.LAPSED): R.STANDBY,
    (R.LEADING, E.DEPOSED): R.STANDBY,
    (R.LEADING, E.STALE): R.LEADING,
    (R.LEADING, E.STOP): R.STOPPED,
    # (a signal about a term arrives here as STALE: a stopped node holds none)
    **{(R.STOPPED, e): IGNORED for e in (E.TICK, E.ACQUIRED, E.NOT_ACQUIRED, E.LEASE_ERROR,
                                          E.LAPSED, E.STOP)},
    (R.STOPPED, E.STALE): R.STOPPED,  # a promotion that finished after the stop: dismantled
}


# -- effects: what the shell does ---------------------------------------------------------------


@dataclass(frozen=True)
class Poll:
    """Write our member row and try to take the lease; answer ACQUIRED / NOT_ACQUIRED /
    LEASE_ERROR, with the local time taken before the request was sent."""


@dataclass(frozen=True)
class Renew:
    """Extend the lease of `term`; answer RENEWED / REFUSED / LEASE_ERROR (sent time too)."""

    term: int


@dataclass(frozen=True)
class Promote:
    """Open the store under `term` and start serving it (off the keeper's thread, since a
    large store takes seconds to load); answer PROMOTED or PROMOTE_FAILED with the term."""

    term: int


@dataclass(frozen=True)
class Serve:
    """Requests go to the actors of `term` from now on."""

    term: int


@dataclass(frozen=True)
class StepDown:
    """Requests get `not_leader` from now on; the actors and store of `term` are dismantled
    (a store that was fenced out drops what it still held)."""

    term: int
    reason: str


@dataclass(frozen=True)
class Dismantle:
    """A promotion of `term` finished after leadership moved on: stop what it started."""

    term: int


@dataclass(frozen=True)
class Release:
    """Make the lease of `term` lapse now, so a standby takes over at its next poll."""

    term: int


@dataclass(frozen=True)
class Schedule:
    """The next TICK, `delay` seconds from now."""

    delay: float


Effect = Poll | Renew | Promote | Serve | StepDown | Dismantle | Release | Schedule


@dataclass
class Leadership:
    """The role of one coordinator, its term, and when its lease stops being trusted."""

    ttl: float
    role: Role = Role.STANDBY
    term: int = 0  # our term while promoting or leading; the last one we held otherwise
    valid_until: float = 0.0  # local bound of our lease (see the module docstring)
    leader: str | None = None  # the endpoint of whoever leads, as far as we know
    reason: str = ""  # why the role last changed
    changes: list[tuple[Role, Role, int, str]] = field(default_factory=list)  # for the log

    def serving(self, now: float) -> bool:
        """May requests be served now? Checked on every frame (a thawed leader must not)."""
        return self.role is Role.LEADING and now < self.valid_until

    def handle(self, event: Event, now: float, **data: object) -> list[Effect]:
        """Apply one event; data: term (ACQUIRED and TERM_EVENTS), sent (ACQUIRED, RENEWED),
        leader (NOT_ACQUIRED), reason (PROMOTE_FAILED, LEASE_ERROR)."""
        if event in TERM_EVENTS and data["term"] != self.held:
            data = {**data, "promoted": event is E.PROMOTED}
            event = E.STALE  # a signal of a term we no longer hold
        if event is E.TICK and self.held is not None and now >= self.valid_until:
            event = E.LAPSED
        key = (self.role, event)
        if key not in TRANSITIONS:
            raise RuntimeError(f"leadership: {event.value} cannot happen while {self.role.value}")
        target = TRANSITIONS[key]
        if target is IGNORED:
            return []
        effects = self._act(event, now, data)
        if target is not self.role:
            self.changes.append((self.role, target, self.term, self.reason))
            self.role = target
        return effects

    @property
    def held(self) -> int | None:
        """The term we hold the lease under (promoting or leading), else None."""
        return self.term if self.role in (R.PROMOTING, R.LEADING) else None

    def _act(self, event: Event, now: float, data: dict[str, object]) -> list[Effect]:
        ttl = self.ttl
        if event is E.TICK:
            if self.role is R.STANDBY:
                return [Poll(), Schedule(ttl / POLLS_PER_TTL)]
            return [Renew(self.term), self._next_renewal(now)]
        if event is E.ACQUIRED:
            self.term = _int(data["term"])
            self.valid_until = _float(data["sent"]) + ttl * LOCAL_MARGIN
            self.reason = f"took the lease (term {self.term})"
            return [Promote(self.term)]
        if event is E.NOT_ACQUIRED:
            leader = data.get("leader")
            self.leader = leader if isinstance(leader, str) else None
            return []
        if event is E.PROMOTED:
            self.reason = f"serving term {self.term}"
            return [Serve(self.term)]
        if event is E.RENEWED:
            self.valid_until = _float(data["sent"]) + ttl * LOCAL_MARGIN
            return []
        if event is E.LEASE_ERROR:
            self.reason = str(data.get("reason", "the database cannot be reached"))
            return []
        if event is E.STALE:
            return [Dismantle(_int(data["term"]))] if data["promoted"] else []
        return self._step_down(event, data)

    def _step_down(self, event: Event, data: dict[str, object]) -> list[Effect]:
        term = self.term
        why = {
            E.PROMOTE_FAILED: f"could not open the store: {data.get('reason', '')}",
            E.REFUSED: "another coordinator took the lease",
            E.LAPSED: "the lease could not be renewed in time",
            E.DEPOSED: "the store refused a write of this term (another coordinator leads)",
            E.STOP: "stopping",
        }[event]
        if self.held is None:  # a standby stopping: nothing held, nothing to hand back
            self.reason = why
            return []
        self.reason = why
        self.valid_until = 0.0
        effects: list[Effect] = [StepDown(term, why)]
        if event in (E.PROMOTE_FAILED, E.STOP, E.LAPSED):
            effects.append(Release(term))  # harmless if lost already: release checks the term
        if event is not E.STOP:
            effects.append(Schedule(self.ttl / POLLS_PER_TTL))
        return effects

    def _next_renewal(self, now: float) -> Schedule:
        """Renew every third of ttl, and wake exactly when the local bound runs out."""
        return Schedule(max(0.0, min(self.ttl / RENEWALS_PER_TTL, self.valid_until - now)))


def _int(value: object) -> int:
    assert isinstance(value, int), value
    return value


def _float(value: object) -> float:
    assert isinstance(value, (int, float)), value
    return float(value)
