"""Coordinator-side worker sessions: one record per worker_id bound to a connection, and the
registry of live and recently ended ones.

Sessions are plain objects inside the WorkerSupervisor rather than one actor each: an actor
is a thread in pykka, and 1,000 connected workers would mean 1,000 threads that mostly sleep,
while a beat costs the supervisor well under 20 us as a dict lookup.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from actors import states
from actors.jobs import Job
from actors.pending_fetch import PendingFetch
from actors.routing import WorkerProfile
from transport.errors import UnknownWorker


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
    active: dict[str, Job] = field(default_factory=dict)  # its leases (actors/leases.py)
    fetch: PendingFetch | None = None
    ended_at: float | None = None
    profile: WorkerProfile | None = None
    name: str | None = None  # from `register` (the `name` extension)
    reported: str | None = None  # the state its last beat reported
    # job_id -> {fraction, message, updated_at, attempt}: its active jobs' latest progress
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def free_slots(self) -> int:
        return self.concurrency - len(self.active)

    @property
    def running(self) -> bool:
        return self.state == states.RUNNING

    def make_profile(self) -> WorkerProfile:
        self.profile = WorkerProfile.build(self.worker_id, self.queues, self.functions, self.labels)
        return self.profile

    def to_stats(self, heartbeat_interval: float) -> dict[str, Any]:
        """Its `stats` entry; `name`, `directed` and `next_beat_by` are extensions (PROTOCOL.md,
        "Extensions"), present only when known."""
        entry: dict[str, Any] = {
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
        if self.name is not None:
            entry["name"] = self.name
        if self.progress and self.ended_at is None:
            entry["progress"] = {job_id: dict(value) for job_id, value in self.progress.items()}
        if self.ended_at is None:
            if self.directive is not None and self.directive != self.reported:
                entry["directed"] = self.directive
            entry["next_beat_by"] = self.last_seen + heartbeat_interval
        return entry


class Sessions:
    """Live sessions by worker_id and by connection; ended ones kept for `stats` a while."""

    def __init__(self) -> None:
        self.live: dict[str, Session] = {}
        self.by_peer: dict[bytes, Session] = {}
        self.ended: dict[str, Session] = {}

    def __iter__(self) -> Iterator[Session]:
        return iter(self.live.values())

    def open(self, worker_id: str, peer: bytes, hostname: str, pid: int, now: float) -> Session:
        session = Session(worker_id, peer, hostname, pid, now, now)
        self.live[worker_id] = session
        self.by_peer[peer] = session
        return session

    def get(self, worker_id: str) -> Session | None:
        return self.live.get(worker_id)

    def on(self, peer: bytes) -> Session | None:
        """The live session of this connection, if any."""
        return self.by_peer.get(peer)

    def of(self, peer: bytes, worker_id: str) -> Session:
        """The live session `worker_id`, which must be this connection's (section 7)."""
        session = self.live.get(worker_id)
        if session is None or session.peer != peer:
            raise UnknownWorker(f"worker {worker_id} is not the live session of this connection")
        return session

    def touch(self, peer: bytes, now: float) -> None:
        session = self.by_peer.get(peer)
        if session is not None:
            session.last_seen = now

    def close(self, session: Session, now: float) -> bool:
        """End a live session; False if it had already ended."""
        if session.ended_at is not None:
            return False
        session.ended_at = now
        session.progress = {}
        del self.live[session.worker_id]
        if self.by_peer.get(session.peer) is session:
            del self.by_peer[session.peer]
        self.ended[session.worker_id] = session
        return True

    def silent(self, now: float, timeout: float) -> list[Session]:
        """Live sessions nothing has arrived from for longer than `timeout`."""
        return [s for s in self.live.values() if now - s.last_seen > timeout]

    def credit(self, now: float, interval: float) -> None:
        """The coordinator itself stalled: count every live session as heard from lately."""
        for session in self.live.values():
            session.last_seen = max(session.last_seen, now - interval)

    def forget_ended(self, now: float, retention: float) -> list[bytes]:
        """Drop sessions ended longer than `retention` ago; returns the connections that have
        no live session left."""
        gone = []
        for worker_id, session in list(self.ended.items()):
            if now - (session.ended_at or now) > retention:
                del self.ended[worker_id]
                if session.peer not in self.by_peer:
                    gone.append(session.peer)
        return gone

    def profiles(self) -> tuple[WorkerProfile, ...]:
        """The routing profiles of the live registered sessions."""
        return tuple(s.profile for s in self.live.values() if s.registered and s.profile)

    def stats(self, heartbeat_interval: float) -> list[dict[str, Any]]:
        sessions = (*self.live.values(), *self.ended.values())
        return [s.to_stats(heartbeat_interval) for s in sessions]
