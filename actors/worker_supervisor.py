"""WorkerSupervisor: worker sessions, reservations, parked fetches, ack/fail and recovery.

`SupervisorCore` holds the rules; `WorkerSupervisor` is the pykka shell. Claims are the only
conversation with the queues: the core tells a QueueActor `Claim` (or leaves a standing claim,
`Stand`, for a parked fetch), the queue answers `Claimed`, and jobs become active here. A claim
whose fetch is gone by then goes straight back (`Hold`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

from actors import events, lifecycle, states
from actors.base import CorralActor
from actors.context import CoordinatorContext
from actors.fetching import FetchMatching
from actors.jobs import Job
from actors.mail import (
    CancelJob,
    Claimed,
    FetchExpired,
    Hold,
    Inbound,
    Orphans,
    Tick,
    Touch,
)
from actors.queue_actor import cancel_job
from actors.recovery import Recovery
from actors.sessions import Session
from transport import codec
from transport import messages as m
from transport.errors import (
    BadRequest,
    CorralError,
    NotOwner,
    TooLarge,
    UnknownJob,
    UnknownWorker,
)

log = logging.getLogger(__name__)


class SupervisorCore(FetchMatching, Recovery):
    """The rules of PROTOCOL.md sections 3 and 6 for every worker session of a coordinator."""

    def __init__(self, ctx: CoordinatorContext) -> None:
        self.ctx = ctx
        self.sessions: dict[str, Session] = {}
        self.by_peer: dict[bytes, Session] = {}
        self.ended: dict[str, Session] = {}
        self.reservations: dict[str, Session] = {}
        self.orphans: dict[str, Session] = {}  # worker_id -> jobs active before a restart
        self.orphans_until = 0.0
        self.last_tick = 0.0
        self._tokens = itertools.count(1)
        self._handlers: dict[type, Callable[[bytes, Any], None]] = {
            m.Hello: self.hello,
            m.Register: self.register,
            m.Beat: self.beat,
            m.Fetch: self.fetch,
            m.Ack: self.ack,
            m.Fail: self.fail,
            m.Outcomes: self.outcomes,
            m.Deregister: self.deregister,
            m.Stats: self.stats,
            m.Direct: self.direct,
        }

    # -- entry points -------------------------------------------------------------------------

    def handle(self, peer: bytes, request: m.Request) -> None:
        self.touch(peer)
        try:
            self._handlers[type(request)](peer, request)
        except CorralError as exc:
            self.ctx.outbox(peer, codec.error(exc.code, exc.message, request.rid))

    def touch(self, peer: bytes) -> None:
        session = self.by_peer.get(peer)
        if session is not None:
            session.last_seen = self.ctx.clock.now()

    def _send(self, peer: bytes, rid: m.Rid, **fields: Any) -> None:
        self.ctx.outbox(peer, codec.reply(rid, **fields))

    def _session(self, peer: bytes, worker_id: str) -> Session:
        session = self.sessions.get(worker_id)
        if session is None or session.peer != peer:
            raise UnknownWorker(f"worker {worker_id} is not the live session of this connection")
        return session

    # -- session lifecycle --------------------------------------------------------------------

    def hello(self, peer: bytes, request: m.Hello) -> None:
        ctx = self.ctx
        previous = self.by_peer.get(peer)
        if previous is not None:
            self.end_session(previous, "replaced")
        now = ctx.clock.now()
        session = Session(ctx.ids.new(), peer, request.hostname, request.pid, now, now)
        self.sessions[session.worker_id] = session
        self.by_peer[peer] = session
        ctx.events.emit(
            events.WORKER_JOINED,
            worker_id=session.worker_id,
            hostname=request.hostname,
            pid=request.pid,
        )
        settings = ctx.settings
        ctx.outbox(
            peer,
            codec.encode(
                {
                    "type": "workerregistered",
                    "rid": request.rid,
                    "worker_id": session.worker_id,
                    "heartbeat_interval": settings.heartbeat_interval,
                    "heartbeat_timeout": settings.heartbeat_timeout,
                    "visibility_timeout": settings.visibility_timeout,
                    # Extensions (docs/PROTOCOL.md): what a corral worker may use beyond the
                    # base protocol, and the frame size it must keep its batches under.
                    "extensions": [m.OUTCOMES_EXTENSION],
                    "max_message_size": ctx.max_message_size,
                }
            ),
        )

    def register(self, peer: bytes, request: m.Register) -> None:
        session = self._session(peer, request.worker_id)
        try:
            for queue in request.queues:
                self.ctx.queues.get(queue)
        except LookupError as exc:
            raise BadRequest(str(exc)) from None
        session.registered = True
        session.queues = request.queues
        session.functions = request.functions
        session.labels = request.labels
        session.concurrency = request.concurrency
        session.hostname = request.hostname or session.hostname
        session.pid = request.pid or session.pid
        session.make_profile()
        resumed = self._resume(session, request.previous_worker_id, request.active_job_ids)
        self._publish_routing()
        self._send(peer, request.rid, worker_id=session.worker_id, resumed_job_ids=resumed)
        if session.fetch is not None and not session.fetch.claim_in_flight:
            self._start_claims(session, session.fetch)

    def _resume(
        self, session: Session, previous_id: str | None, job_ids: tuple[str, ...]
    ) -> list[str]:
        """Move the listed jobs still active under the previous session to this one."""
        if not previous_id or previous_id == session.worker_id:
            return []
        orphaned = previous_id in self.orphans
        previous = self.orphans.pop(previous_id) if orphaned else self.sessions.get(previous_id)
        if previous is None:
            return []
        now = self.ctx.clock.now()
        resumed = []
        for job_id in job_ids:
            job = previous.active.pop(job_id, None)
            if job is None:
                continue
            job.worker_id = session.worker_id
            job.deadline = now + self._timeout(job)
            session.active[job_id] = job
            self.reservations[job_id] = session
            self.ctx.store.save(job)
            resumed.append(job_id)
        if orphaned:
            self._recover_all(previous, "not resumed after the coordinator restarted")
        else:
            self.end_session(previous, "replaced")
        return resumed

    def end_session(self, session: Session, reason: str) -> None:
        """End a session: recover its jobs as failed attempts, forget its fetch."""
        if session.ended_at is not None:
            return
        session.ended_at = self.ctx.clock.now()
        del self.sessions[session.worker_id]
        if self.by_peer.get(session.peer) is session:
            del self.by_peer[session.peer]
        self.ended[session.worker_id] = session
        self._drop_fetch(session)
        for job in list(session.active.values()):
            self._recover(
                session, job, "worker_lost", f"worker {session.worker_id} lost ({reason})"
            )
        if session.registered:
            self._publish_routing()
        log.debug("worker %s ended: %s", session.worker_id, reason)  # nodes.logs says it
        self.ctx.events.emit(events.WORKER_LOST, worker_id=session.worker_id, reason=reason)

    def deregister(self, peer: bytes, request: m.Deregister) -> None:
        session = self._session(peer, request.worker_id)
        self._answer_fetch(session)  # a parked fetch gets its (empty) answer, not silence
        self.end_session(session, "deregistered")
        self._send(peer, request.rid)

    def _publish_routing(self) -> None:
        profiles = tuple(s.profile for s in self.sessions.values() if s.registered and s.profile)
        self.ctx.queues.publish(profiles)

    # -- beats and directives -----------------------------------------------------------------

    def beat(self, peer: bytes, request: m.Beat) -> None:
        session = self._session(peer, request.worker_id)
        now = self.ctx.clock.now()
        wanted = session.directive or request.state
        previous = session.state
        session.state = states.next_worker_state(session.state, wanted)
        abandon = []
        for job_id in request.active_job_ids:
            job = session.active.get(job_id)
            if job is None:
                abandon.append(job_id)
            else:
                job.deadline = now + self._timeout(job)
        if previous != states.RUNNING and session.state == states.RUNNING:
            self._slot_freed(session)  # a parked fetch of a quiet worker may take jobs now
        elif previous == states.RUNNING and session.state != states.RUNNING:
            self._paused(session)
        self._send(
            peer,
            request.rid,
            state=session.state,
            visibility_timeout=self.ctx.settings.visibility_timeout,
            cancel_job_ids=abandon,
        )

    def direct(self, peer: bytes, request: m.Direct) -> None:
        session = self.sessions.get(request.worker_id)
        if session is None:
            raise UnknownWorker(f"no live worker {request.worker_id}")
        if session.directive != states.TERMINATE:
            session.directive = request.state
        self.ctx.events.emit(
            events.WORKER_DIRECTED, worker_id=session.worker_id, state=request.state
        )
        log.debug("worker %s directed to %s", session.worker_id, request.state)
        self._send(peer, request.rid)

    def stats(self, peer: bytes, request: m.Stats) -> None:
        counts = self.ctx.store.counts()
        for name in self.ctx.queues.names():
            counts.setdefault(name, dict.fromkeys(states.JOB_STATES, 0))

        workers = [s.to_stats() for s in (*self.sessions.values(), *self.ended.values())]
        unroutable = {name: n for name, n in sorted(self.ctx.unroutable.items()) if n}
        self._send(peer, request.rid, queues=counts, workers=workers, unroutable=unroutable)

    # -- results ------------------------------------------------------------------------------

    def _owned_job(self, session: Session, job_id: str, attempt: int) -> Job:
        job = session.active.get(job_id)
        if job is None or job.attempt != attempt:
            if job is None and self.ctx.store.get(job_id) is None:
                raise UnknownJob(f"no job {job_id}")
            raise NotOwner(f"job {job_id} attempt {attempt} is not active under this worker")
        return job

    def _release(self, session: Session, job: Job) -> None:
        del session.active[job.id]
        del self.reservations[job.id]
        job.deadline = None

    def ack(self, peer: bytes, request: m.Ack) -> None:
        session = self._session(peer, request.worker_id)
        job = self._owned_job(session, request.job_id, request.attempt)
        self._complete(session, job, request.result)
        self._send(peer, request.rid)  # the contract's ack reply is empty
        self._slot_freed(session)

    def fail(self, peer: bytes, request: m.Fail) -> None:
        session = self._session(peer, request.worker_id)
        job = self._owned_job(session, request.job_id, request.attempt)
        self._send(peer, request.rid, **self._failed(session, job, request.error))
        self._slot_freed(session)

    def outcomes(self, peer: bytes, request: m.Outcomes) -> None:
        """Extension: each item exactly as its own ack or fail would be, one reply for all.

        An item refused (not_owner, unknown_job, too_large) changes nothing and does not stop
        the others; freed slots are offered to the worker's parked fetch once, at the end.
        """
        session = self._session(peer, request.worker_id)
        results: list[dict[str, Any]] = []
        for item in request.outcomes:
            try:
                if item.too_large:
                    raise TooLarge(f"job {item.job_id}: exceeds max_result_size")
                job = self._owned_job(session, item.job_id, item.attempt)
                if item.error is None:
                    results.append(self._complete(session, job, item.result))
                else:
                    results.append(self._failed(session, job, item.error))
            except CorralError as exc:
                results.append({"code": exc.code, "message": exc.message})
        self._send(peer, request.rid, results=results)
        self._slot_freed(session)

    def _complete(self, session: Session, job: Job, result: Any) -> dict[str, Any]:
        self._release(session, job)
        lifecycle.complete(job, self.ctx.clock.now(), result)
        self.ctx.store.save(job)
        self.ctx.events.emit(events.JOB_TERMINAL, job=job)
        return {"state": job.state}

    def _failed(self, session: Session, job: Job, error: m.ErrorInfo) -> dict[str, Any]:
        """A failed attempt: retry later or discard; returns the reply fields."""
        self._release(session, job)
        lifecycle.fail(job, self.ctx.clock.now(), error, self.ctx.rng)
        self.ctx.store.save(job)
        if job.state == states.DISCARDED:
            self.ctx.events.emit(events.JOB_TERMINAL, job=job)
            return {"state": job.state}
        self.ctx.events.emit(events.JOB_RETRY, job=job)
        reply = {"state": job.state, "next_attempt_at": job.next_attempt_at}
        self.ctx.queues.get(job.queue).tell(Hold([job]))  # the queue's from here on
        return reply

    def _timeout(self, job: Job) -> float:
        return job.timeout or self.ctx.settings.visibility_timeout

    # -- cancellation and time ----------------------------------------------------------------

    def cancel(self, message: CancelJob) -> None:
        session = self.reservations.get(message.job_id)
        if session is not None:
            job = session.active[message.job_id]
            self._release(session, job)
            cancel_job(self.ctx, job)
            self._send(message.peer, message.rid, state=job.state)
            self._slot_freed(session)
            return
        stored = self.ctx.store.get(message.job_id)
        if stored is None or stored["state"] in states.TERMINAL_STATES:
            self._send(
                message.peer, message.rid, state=stored["state"] if stored else states.CANCELLED
            )
            return
        self.ctx.queues.get(stored["queue"]).tell(
            CancelJob(message.job_id, message.peer, message.rid, message.bounces + 1)
        )


class WorkerSupervisor(CorralActor):
    """The pykka shell of SupervisorCore."""

    def __init__(self, activity: Any, ctx: CoordinatorContext) -> None:
        self.core = SupervisorCore(ctx)
        super().__init__(activity)

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        core = self.core
        return {
            Inbound: lambda message: core.handle(message.peer, message.request),
            Touch: lambda message: core.touch(message.peer),
            Claimed: core.claimed,
            FetchExpired: core.fetch_expired,
            CancelJob: core.cancel,
            Tick: core.tick,
            Orphans: core.adopt,
        }

    def on_handler_error(self, message: Any) -> None:
        if isinstance(message, Inbound):
            self.core.ctx.outbox(
                message.peer, codec.error("internal", "the supervisor failed", message.request.rid)
            )
