"""Recovery, the part of the WorkerSupervisor that returns lost work: expired leases, dead or
replaced sessions, jobs orphaned by a coordinator restart, and the reaper's tick that judges them.
The state it uses is owned by SupervisorCore.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from actors import events, lifecycle, states
from actors.context import CoordinatorContext
from actors.jobs import Job
from actors.mail import Hold, Orphans, Tick
from actors.sessions import Session

log = logging.getLogger(__name__)


class Recovery:
    """Mixed into SupervisorCore."""

    ctx: CoordinatorContext
    sessions: dict[str, Session]
    by_peer: dict[bytes, Session]
    ended: dict[str, Session]
    reservations: dict[str, Session]
    orphans: dict[str, Session]  # worker_id -> jobs active before a restart
    orphans_until: float
    last_tick: float

    # Provided by SupervisorCore:
    end_session: Callable[[Session, str], None]
    _release: Callable[[Session, Job], None]
    _timeout: Callable[[Job], float]

    def adopt(self, message: Orphans) -> None:
        """Jobs found active in the store at start: their workers may come back and resume them
        until `heartbeat_timeout` has passed; the rest are then recovered as worker_lost."""
        now = self.ctx.clock.now()
        self.orphans_until = now + self.ctx.settings.heartbeat_timeout
        for job in message.jobs:
            worker_id = job.worker_id or ""
            ghost = self.orphans.get(worker_id)
            if ghost is None:
                ghost = self.orphans[worker_id] = Session(worker_id, b"", "", 0, now, now)
            job.deadline = now + self._timeout(job)
            ghost.active[job.id] = job
            self.reservations[job.id] = ghost

    def _recover_all(self, session: Session, reason: str) -> None:
        for job in list(session.active.values()):
            self._recover(
                session, job, "worker_lost", f"worker {session.worker_id} lost ({reason})"
            )

    def _recover(self, session: Session, job: Job, kind: str, message: str) -> None:
        """A lost or expired reservation: a failed attempt, back to available at once."""
        self._release(session, job)
        self.ctx.events.emit(events.JOB_RECOVERED, job=job, reason=kind)  # still its worker's
        lifecycle.recover(job, self.ctx.clock.now(), kind, message)
        self.ctx.store.save(job)
        if job.state == states.DISCARDED:
            self.ctx.events.emit(events.JOB_TERMINAL, job=job)
        else:
            self.ctx.queues.get(job.queue).tell(Hold([job]))

    def _forgive_own_stall(self, now: float) -> None:
        """If this coordinator itself was frozen (SIGSTOP, a swapped-out VM), its silence is not
        the workers': credit every session and lease with the stall before judging anyone, so
        beats waiting in the socket get read before a healthy worker is declared dead."""
        last, self.last_tick = self.last_tick, now
        stall = now - last - self.ctx.settings.reaper_interval if last else 0.0
        if stall <= self.ctx.settings.heartbeat_interval:
            return
        log.warning("coordinator stalled for %.1f s; extending every session and lease", stall)
        for session in self.sessions.values():
            session.last_seen = max(session.last_seen, now - self.ctx.settings.heartbeat_interval)
        for job_id, session in self.reservations.items():
            job = session.active[job_id]
            if job.deadline is not None:
                job.deadline += stall
        self.orphans_until += stall

    def tick(self, message: Tick) -> None:
        now, settings = message.now, self.ctx.settings
        self._forgive_own_stall(now)
        for session in list(self.sessions.values()):
            if now - session.last_seen > settings.heartbeat_timeout:
                self.end_session(session, "timeout")
        for job_id, session in list(self.reservations.items()):
            job = session.active[job_id]
            if job.deadline is not None and job.deadline <= now:
                self._recover(
                    session, job, "timeout", f"reservation expired after {self._timeout(job)} s"
                )
        if self.orphans and now >= self.orphans_until:
            for ghost in self.orphans.values():
                self._recover_all(ghost, "not resumed after the coordinator restarted")
            self.orphans.clear()
        for worker_id, session in list(self.ended.items()):
            if now - (session.ended_at or now) > settings.terminated_retention:
                del self.ended[worker_id]
                if session.peer not in self.by_peer:  # no newer session on that connection
                    self.ctx.greeted.discard(session.peer)
