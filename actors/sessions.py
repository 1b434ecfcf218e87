"""Coordinator-side worker sessions and their pending fetches (plain records).

Sessions are plain objects inside the WorkerSupervisor rather than one actor each: an actor
is a thread in pykka, and 1,000 connected workers would mean 1,000 threads that mostly sleep,
while a beat costs the supervisor well under 20 us as a dict lookup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from actors import states
from actors.clock import Timer
from actors.jobs import Job
from actors.routing import WorkerProfile
from transport.messages import Rid


@dataclass(slots=True)
class PendingFetch:
    """A fetch being served: claims go to its queues one at a time, in the worker's order;
    parked, it stands at all of them (see actors/fetching.py)."""

    token: int
    rid: Rid
    wanted: int
    queues: tuple[str, ...]
    wait: float
    next_queue: int = 0
    jobs: list[Job] = field(default_factory=list)
    claim_in_flight: bool = False
    parked_since: float | None = None
    timer: Timer | None = None
    expired: bool = False
    stand: int | None = None  # parked: the token of its standing claim at each of its queues


@dataclass(slots=True)
class Session:
    """One worker session: a worker_id bound to one connection."""

    worker_id: str
    peer: bytes
    hostname: str
    pid: int
    started_at: float
    last_seen: float
    registered: bool = False
    queues: tuple[str, ...] = ()
    functions: frozenset[str] = frozenset()
    labels: dict[str, frozenset[str]] = field(default_factory=dict)
    concurrency: int = 0
    state: str = states.RUNNING
    directive: str | None = None
    active: dict[str, Job] = field(default_factory=dict)
    fetch: PendingFetch | None = None
    ended_at: float | None = None
    profile: WorkerProfile | None = None

    @property
    def free_slots(self) -> int:
        return self.concurrency - len(self.active)

    def make_profile(self) -> WorkerProfile:
        self.profile = WorkerProfile.build(self.worker_id, self.queues, self.functions, self.labels)
        return self.profile

    def to_stats(self) -> dict[str, Any]:
        return {
            "worker_id": self.worker_id,
            "hostname": self.hostname,
            "pid": self.pid,
            "state": states.TERMINATED if self.ended_at is not None else self.state,
            "queues": list(self.queues),
            "functions": sorted(self.functions),
            "labels": {key: sorted(values) for key, values in self.labels.items()},
            "concurrency": self.concurrency,
            "active": len(self.active),
            "last_seen": self.last_seen,
        }
