"""The supervisor's leases: which session each active job is reserved to, until when.

A job's lease is its reservation deadline (`job.deadline`, set by lifecycle.activate): reset
by every beat that lists the job, moved to a new session by a resume, credited by the time the
coordinator itself was stalled. A job with a `run_timeout` (docs/PROTOCOL.md extension "Run
timeout") is never reserved past `started_at + run_timeout`: beats, resumes and credit stop
there, and the expiry that follows is the lease's. Sessions keep their own jobs in
`Session.active`; this index finds a job's session by id (cancel, expiry) without walking every
session.
"""

from __future__ import annotations

from collections.abc import Callable

from actors.jobs import Job
from actors.sessions import Session


def run_ends(job: Job) -> float | None:
    """When the job's run timeout ends its attempt (from `started_at`), if it has one."""
    if job.run_timeout is None or job.started_at is None:
        return None
    return job.started_at + job.run_timeout


def run_out(job: Job) -> bool:
    """True when the job's deadline is its run timeout's, not its lease's."""
    ends = run_ends(job)
    return ends is not None and job.deadline is not None and job.deadline >= ends


class Leases:
    """job_id -> the session holding it, for every active job of this coordinator."""

    def __init__(self, visibility_timeout: float, freed: Callable[[Job], None]) -> None:
        self.visibility_timeout = visibility_timeout
        self.freed = freed  # a released job gives its limit's slot back (SupervisorPort)
        self._owner: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._owner)

    def length(self, job: Job) -> float:
        """How long a lease of this job lasts: its own timeout, else the coordinator's."""
        return job.timeout or self.visibility_timeout

    def hold(self, session: Session, job: Job) -> None:
        """The session holds the job (its deadline is set by the lifecycle or `renew`)."""
        session.active[job.id] = job
        self._owner[job.id] = session

    def release(self, session: Session, job: Job) -> None:
        """The session lets go of the job (settled, recovered or cancelled)."""
        del session.active[job.id]
        del self._owner[job.id]
        self.freed(job)

    def owner(self, job_id: str) -> Session | None:
        """The session holding this job, if it is active here."""
        return self._owner.get(job_id)

    def renew(self, job: Job, now: float) -> None:
        """A beat (or a resume, or an adoption) starts the lease afresh, up to the end of the
        job's run timeout."""
        deadline = now + self.length(job)
        ends = run_ends(job)
        job.deadline = deadline if ends is None else min(deadline, ends)

    def transfer(self, job_id: str, old: Session, new: Session, now: float) -> Job | None:
        """Move a job's lease to a resuming session, renewed; None if `old` does not hold it."""
        job = old.active.pop(job_id, None)
        if job is None:
            return None
        job.worker_id = new.worker_id
        self.renew(job, now)
        self.hold(new, job)
        return job

    def expired(self, now: float) -> list[tuple[Session, Job]]:
        """Leases whose deadline has passed, in the order they were taken."""
        due = []
        for job_id, session in self._owner.items():
            job = session.active[job_id]
            if job.deadline is not None and job.deadline <= now:
                due.append((session, job))
        return due

    def credit(self, stall: float) -> None:
        """The coordinator itself stalled: extend every lease by the stall, never past the end
        of a run timeout (the job did run all that time)."""
        for job_id, session in self._owner.items():
            job = session.active[job_id]
            if job.deadline is not None:
                ends = run_ends(job)
                job.deadline += stall
                if ends is not None and job.deadline > ends:
                    job.deadline = ends
