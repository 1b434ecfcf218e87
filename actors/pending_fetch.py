"""A fetch being served (PROTOCOL.md section 3.4), with its lifecycle as one table.

A fetch walks its queues with one claim at a time, in the worker's order (`claiming`). When no
queue had jobs and it may wait, it parks (`parked`): it leaves a standing claim with each queue,
or none while the worker is full or quiet. Its wait running out while a claim is out makes it
`expired`: answered the moment that claim comes back. A fetch ends `answered` (its reply sent)
or `dropped` (its session ended; nobody is left to answer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from actors.jobs import Job
from actors.states import IllegalTransition
from actors.supervisor_port import Cancellable
from transport.messages import Rid

CLAIMING = "claiming"
PARKED = "parked"
EXPIRED = "expired"
ANSWERED = "answered"
DROPPED = "dropped"
STATES = (CLAIMING, PARKED, EXPIRED, ANSWERED, DROPPED)

CLAIM = "claim"  # a claim goes to the next queue
PARK = "park"  # no queue had (enough) jobs: wait, standing at every queue if it has room
EXPIRE = "expire"  # the wait ran out
ANSWER = "answer"  # the reply goes out, with the jobs it got (perhaps none)
DROP = "drop"  # the session ended
EVENTS = (CLAIM, PARK, EXPIRE, ANSWER, DROP)

TABLE: dict[tuple[str, str], str] = {
    (CLAIMING, CLAIM): CLAIMING,
    (PARKED, CLAIM): CLAIMING,  # room freed, the worker runs again, or it re-registered
    (CLAIMING, PARK): PARKED,
    (PARKED, PARK): PARKED,  # a standing claim renewed with today's room and rank
    (CLAIMING, EXPIRE): EXPIRED,
    (PARKED, EXPIRE): EXPIRED,
    **{(state, ANSWER): ANSWERED for state in (CLAIMING, PARKED, EXPIRED)},
    **{(state, DROP): DROPPED for state in (CLAIMING, PARKED, EXPIRED)},
}


@dataclass(slots=True)
class PendingFetch:
    """One worker's fetch from its arrival to its reply (see actors/fetching.py)."""

    token: int
    rid: Rid
    wanted: int
    queues: tuple[str, ...]
    wait: float
    state: str = CLAIMING
    next_queue: int = 0
    jobs: list[Job] = field(default_factory=list)
    parked_since: float | None = None  # first parked: its rank among standing claims
    timer: Cancellable | None = None
    stand: int | None = None  # parked: the token of its standing claim at each of its queues

    def move(self, event: str) -> None:
        """Take `event` through the table; a pair missing from it raises."""
        new = TABLE.get((self.state, event))
        if new is None:
            raise IllegalTransition(f"a {self.state} fetch cannot {event}")
        self.state = new

    @property
    def claim_out(self) -> bool:
        """A claim is at a queue and its answer not back yet."""
        return self.state == CLAIMING or self.state == EXPIRED
