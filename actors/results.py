"""Attempt results: the part of the supervisor core that settles `ack` and `fail` (PROTOCOL.md
sections 3.5 and 3.6, and each item of the outcomes extension).

An attempt is settled only by the session holding the job's lease, for the attempt it was
handed: anything else (an older attempt, a job cancelled or recovered meanwhile) is
`not_owner` and changes nothing.
"""

from __future__ import annotations

import random
from typing import Any

from actors import events, lifecycle, states
from actors.jobs import Job
from actors.leases import Leases
from actors.mail import Hold
from actors.sessions import Session
from actors.store.base import Store
from actors.supervisor_port import SupervisorPort
from transport import messages as m
from transport.errors import NotOwner, UnknownJob


class AttemptResults:
    """Completes or fails the attempts of the jobs a session holds; returns the reply fields."""

    def __init__(
        self, leases: Leases, store: Store, port: SupervisorPort, rng: random.Random
    ) -> None:
        self.leases = leases
        self.store = store
        self.port = port
        self.rng = rng

    def complete(
        self, now: float, session: Session, job_id: str, attempt: int, result: Any
    ) -> dict[str, Any]:
        """An acked attempt: the job is completed."""
        job = self._owned(session, job_id, attempt)
        self.leases.release(session, job)
        lifecycle.complete(job, now, result)
        self.store.save(job)
        self.port.emit(events.JOB_TERMINAL, job=job)
        return {"state": job.state}

    def fail(
        self, now: float, session: Session, job_id: str, attempt: int, error: m.ErrorInfo
    ) -> dict[str, Any]:
        """A failed attempt: retry later or discard."""
        job = self._owned(session, job_id, attempt)
        self.leases.release(session, job)
        lifecycle.fail(job, now, error, self.rng)
        self.store.save(job)
        if job.state == states.DISCARDED:
            self.port.emit(events.JOB_TERMINAL, job=job)
            return {"state": job.state}
        self.port.emit(events.JOB_RETRY, job=job)
        reply = {"state": job.state, "next_attempt_at": job.next_attempt_at}
        self.port.tell_queue(job.queue, Hold([job]))  # the queue's from here on
        return reply

    def _owned(self, session: Session, job_id: str, attempt: int) -> Job:
        job = session.active.get(job_id)
        if job is None or job.attempt != attempt:
            if job is None and self.store.get(job_id) is None:
                raise UnknownJob(f"no job {job_id}")
            raise NotOwner(f"job {job_id} attempt {attempt} is not active under this worker")
        return job
