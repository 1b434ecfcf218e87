"""Recovery: the part of the supervisor core that returns lost work (PROTOCOL.md section 6).

A lost or expired lease is a failed attempt (lifecycle.recover): the job goes back to its
queue at once, or is discarded when its attempts are exhausted. Jobs found active in the store
at a restart are held by "orphan" sessions under their old worker ids until their workers
resume them or `heartbeat_timeout` has passed.
"""

from __future__ import annotations

from actors import events, lifecycle, states
from actors.jobs import Job
from actors.leases import Leases, run_out
from actors.mail import Hold
from actors.sessions import Session
from actors.store.base import Store
from actors.supervisor_port import SupervisorPort


class Recovery:
    """Owns the orphans of a restart and turns lost leases into failed attempts."""

    def __init__(self, leases: Leases, store: Store, port: SupervisorPort) -> None:
        self.leases = leases
        self.store = store
        self.port = port
        self.orphans: dict[str, Session] = {}  # worker_id -> jobs active before a restart
        self.orphans_until = 0.0

    def adopt(self, now: float, jobs: list[Job], grace: float) -> None:
        """Jobs found active in the store at start: their workers may come back and resume them
        until `grace` has passed; the rest are then recovered as worker_lost."""
        self.orphans_until = now + grace
        for job in jobs:
            worker_id = job.worker_id or ""
            ghost = self.orphans.get(worker_id)
            if ghost is None:
                ghost = self.orphans[worker_id] = Session(worker_id, b"", "", 0, now, now)
            self.leases.renew(job, now)
            self.leases.hold(ghost, job)
            self.port.take_limit(job)

    def claim_orphan(self, worker_id: str) -> Session | None:
        """The orphan session of a worker that came back to resume, if there is one."""
        return self.orphans.pop(worker_id, None)

    def recover(self, now: float, session: Session, job: Job, kind: str, message: str) -> None:
        """A lost or expired lease: a failed attempt, back to available at once."""
        self.leases.release(session, job)
        self.port.emit(events.JOB_RECOVERED, job=job, reason=kind)  # still its worker's
        lifecycle.recover(job, now, kind, message)
        self.store.save(job)
        if job.state == states.DISCARDED:
            self.port.emit(events.JOB_TERMINAL, job=job)
        else:
            self.port.tell_queue(job.queue, Hold([job]))

    def recover_all(self, now: float, session: Session, reason: str) -> None:
        """Every job of a session that is gone, as `worker_lost`."""
        for job in list(session.active.values()):
            self.recover(
                now, session, job, "worker_lost", f"worker {session.worker_id} lost ({reason})"
            )

    def expire(self, now: float) -> None:
        """Recover every lease past its deadline, and the orphans past their grace."""
        for session, job in self.leases.expired(now):
            if run_out(job):  # docs/PROTOCOL.md extension "Run timeout"
                why = f"run timeout of {job.run_timeout} s passed (started at {job.started_at})"
            else:
                why = f"reservation expired after {self.leases.length(job)} s"
            self.recover(now, session, job, "timeout", why)
        if self.orphans and now >= self.orphans_until:
            for ghost in self.orphans.values():
                self.recover_all(now, ghost, "not resumed after the coordinator restarted")
            self.orphans.clear()

    def credit(self, stall: float) -> None:
        """The coordinator itself stalled: its orphans' grace is extended by the stall."""
        self.orphans_until += stall
