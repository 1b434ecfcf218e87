"""Cancels (PROTOCOL.md section 4): found by looking the job up, never by chasing it.

A job has three possible holders, its queue (scheduled, available, retryable), the worker
supervisor (active) and the FlowActor (deferred), and the store says which: each holder saves a
job's new state before it lets the job go, so the store names either the holder or the one the
job is travelling to.
A cancel is registered here first, then the store is read and that owner nudged (`CancelJob`).
The owner settles the cancel if it holds the job. If it does not, the job is on its way to
the other one, which looks here as the job arrives (a queue on every `Hold`, the supervisor
right after saving an activation: saving before looking is what makes the race safe), or
the job has ended, and its stored state is the answer. Every requester is answered exactly
once: whoever takes its entry from this registry answers it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from actors import events, lifecycle, states
from actors.base import Mailbox
from actors.events import EventHub
from actors.jobs import Job
from actors.mail import CancelJob
from actors.store.base import Store
from transport import codec
from transport.messages import Rid


class Queues(Protocol):
    def get(self, name: str) -> Mailbox: ...


class Owners(Protocol):
    """What cancels need of the coordinator's context (the CoordinatorContext that holds them)."""

    store: Store
    supervisor: Mailbox
    flows: Mailbox
    queues: Queues
    events: EventHub
    outbox: Callable[[bytes, bytes], None]


class Cancellations:
    """The cancels asked for and not answered yet: job_id -> who asked. Thread-safe."""

    def __init__(self, ctx: Owners) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()
        self._asked: dict[str, list[tuple[bytes | None, Rid]]] = {}

    def __bool__(self) -> bool:
        return bool(self._asked)

    def request(self, job_id: str, peer: bytes | None, rid: Rid) -> None:
        """A client's cancel (dispatcher thread): register it, then nudge the job's owner.
        `peer` None: nobody waits for the answer (a workflow's steps, cancelled together)."""
        with self._lock:
            self._asked.setdefault(job_id, []).append((peer, rid))
        stored = self._ctx.store.get(job_id)  # read after registering (see the module doc)
        if stored is None or stored["state"] in states.TERMINAL_STATES:
            self.missed(job_id)
        elif stored["state"] == states.ACTIVE:
            self._ctx.supervisor.tell(CancelJob(job_id))
        elif stored["state"] == states.DEFERRED:
            self._ctx.flows.tell(CancelJob(job_id))
        else:
            self._ctx.queues.get(stored["queue"]).tell(CancelJob(job_id))

    def asked(self, job_id: str) -> bool:
        """True when a cancel of this job waits for its holder (the holder checks as a job
        arrives: one dict lookup)."""
        return job_id in self._asked

    def settle(self, job: Job, now: float) -> None:
        """The holder let go of the job for a cancel: cancel, store and answer it."""
        lifecycle.cancel(job, now)
        self._ctx.store.save(job)
        self._ctx.events.emit(events.JOB_TERMINAL, job=job)
        self._answer(job.id, state=job.state)

    def missed(self, job_id: str) -> None:
        """The nudged owner does not hold the job: answer now if it has ended (its stored state,
        or unknown_job once pruned); else its next holder settles it on arrival."""
        stored = self._ctx.store.get(job_id)
        if stored is None:
            self._answer(job_id, code="unknown_job", message=f"no job {job_id}")
        elif stored["state"] in states.TERMINAL_STATES:
            self._answer(job_id, state=stored["state"])

    def failed(self, job_id: str, message: str) -> None:
        """The owner failed on the cancel (a bug): answer `internal` rather than nothing."""
        self._answer(job_id, code="internal", message=message)

    def _answer(
        self,
        job_id: str,
        state: str | None = None,
        code: str | None = None,
        message: str = "",
    ) -> None:
        with self._lock:
            waiting = self._asked.pop(job_id, ())
        for peer, rid in waiting:
            if peer is None:
                continue
            if code is None:
                self._ctx.outbox(peer, codec.reply(rid, state=state))
            else:
                self._ctx.outbox(peer, codec.error(code, message, rid))
