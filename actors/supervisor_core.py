"""SupervisorCore: the rules of PROTOCOL.md sections 3 and 6 for every worker session.

A plain class: the shell (actors/worker_supervisor.py) reads the clock once per message and
passes `now` in, and everything the core does to the world goes through one SupervisorPort.
It wires four parts, each owning its own state: `Sessions` (who is connected), `Leases` (which
session holds each active job, until when), `FetchMatching` (pending fetches and their claims)
and `Recovery` (lost leases and the orphans of a restart).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

from actors import events, states
from actors.coordinator_settings import CoordinatorSettings
from actors.fetching import FetchMatching
from actors.jobs import Job
from actors.leases import Leases
from actors.mail import Claimed, FetchExpired
from actors.recovery import Recovery
from actors.results import AttemptResults
from actors.session_progress import keep_progress, progress_of
from actors.sessions import Session, Sessions
from actors.store.base import Store
from actors.supervisor_port import SupervisorPort
from transport import codec
from transport import messages as m
from transport.errors import BadRequest, CorralError, TooLarge, UnknownWorker

log = logging.getLogger(__name__)


class SupervisorCore:
    """Worker sessions, their leases and fetches, ack/fail, cancel of active jobs, recovery."""

    def __init__(
        self,
        settings: CoordinatorSettings,
        store: Store,
        port: SupervisorPort,
        rng: random.Random,
        max_message_size: int,
    ) -> None:
        self.settings = settings
        self.store = store
        self.port = port
        self.rng = rng
        self.max_message_size = max_message_size  # announced to workers in workerregistered
        self.sessions = Sessions()
        self.leases = Leases(settings.visibility_timeout, port.free_limit)
        self.fetching = FetchMatching(
            self.sessions, self.leases, store, port, settings.heartbeat_timeout
        )
        self.recovery = Recovery(self.leases, store, port)
        self.results = AttemptResults(self.leases, store, port, rng)
        self.last_tick = 0.0
        self._handlers: dict[type, Callable[[float, bytes, Any], None]] = {
            m.Hello: self.hello,
            m.Register: self.register,
            m.Beat: self.beat,
            m.Fetch: self.fetch,
            m.Ack: self.ack,
            m.Fail: self.fail,
            m.Outcomes: self.outcomes,
            m.Deregister: self.deregister,
            m.Direct: self.direct,
        }

    # -- entry points (the shell's messages) --------------------------------------------------

    def handle(self, now: float, peer: bytes, request: m.Request) -> None:
        """A worker-session request (section 3) or `direct`; a refusal is its error reply."""
        self.sessions.touch(peer, now)
        try:
            self._handlers[type(request)](now, peer, request)
        except CorralError as exc:
            self.port.send(peer, codec.error(exc.code, exc.message, request.rid))

    def touch(self, now: float, peer: bytes) -> None:
        """Something arrived from this connection: life for its session."""
        self.sessions.touch(peer, now)

    def claimed(self, now: float, message: Claimed) -> None:
        """A queue's answer to a claim or a standing claim."""
        self.fetching.claimed(now, message)

    def fetch_expired(self, now: float, message: FetchExpired) -> None:
        """A parked fetch's timer (set through `SupervisorPort.later`)."""
        self.fetching.expired(now, message)

    def adopt(self, now: float, jobs: list[Job]) -> None:
        """Jobs the store held as active at start (a restart): kept for their workers."""
        self.recovery.adopt(now, jobs, self.settings.heartbeat_timeout)

    def cancel(self, now: float, job_id: str) -> None:
        """A client's cancel found the job active in the store: settle it if a session still
        holds it; else the job has moved on, and its next holder settles it."""
        session = self.leases.owner(job_id)
        if session is None:
            self.port.cancel_missed(job_id)
            return
        job = session.active[job_id]
        self.leases.release(session, job)
        self.port.settle_cancel(job, now)  # the worker hears of it in its next beat reply
        self.fetching.slot_freed(now, session)

    def tick(self, now: float) -> None:
        """The reaper's round: silent workers are dead, expired leases are recovered."""
        settings = self.settings
        self._forgive_own_stall(now)
        for session in self.sessions.silent(now, settings.heartbeat_timeout):
            self.end_session(now, session, "timeout")
        self.recovery.expire(now)
        for peer in self.sessions.forget_ended(now, settings.terminated_retention):
            self.port.forget_peer(peer)

    # -- session lifecycle --------------------------------------------------------------------

    def hello(self, now: float, peer: bytes, request: m.Hello) -> None:
        previous = self.sessions.on(peer)
        if previous is not None:
            self.end_session(now, previous, "replaced")
        worker_id = self.port.new_worker_id()
        self.sessions.open(worker_id, peer, request.hostname, request.pid, now)
        self.port.emit(
            events.WORKER_JOINED, worker_id=worker_id, hostname=request.hostname, pid=request.pid
        )
        settings = self.settings
        welcome = {
            "type": "workerregistered",
            "rid": request.rid,
            "worker_id": worker_id,
            "heartbeat_interval": settings.heartbeat_interval,
            "heartbeat_timeout": settings.heartbeat_timeout,
            "visibility_timeout": settings.visibility_timeout,
            # Extensions (docs/PROTOCOL.md): what a corral worker may use beyond the base
            # protocol, and the frame size it must keep its batches under.
            "extensions": [m.OUTCOMES_EXTENSION],
            "max_message_size": self.max_message_size,
        }
        self.port.send(peer, codec.encode(welcome))

    def register(self, now: float, peer: bytes, request: m.Register) -> None:
        session = self.sessions.of(peer, request.worker_id)
        try:
            for queue in request.queues:
                self.port.open_queue(queue)
        except LookupError as exc:
            raise BadRequest(str(exc)) from None
        session.registered = True
        session.queues = request.queues
        session.functions = request.functions
        session.labels = request.labels
        session.concurrency = request.concurrency
        session.hostname = request.hostname or session.hostname
        session.pid = request.pid or session.pid
        session.name = request.name or session.name
        session.make_profile()
        resumed = self._resume(now, session, request.previous_worker_id, request.active_job_ids)
        self.port.publish(self.sessions.profiles())
        self._reply(peer, request.rid, worker_id=session.worker_id, resumed_job_ids=resumed)
        self.fetching.resume(now, session)

    def _resume(
        self, now: float, session: Session, previous_id: str | None, job_ids: tuple[str, ...]
    ) -> list[str]:
        """Move the listed jobs still active under the previous session to this one."""
        if not previous_id or previous_id == session.worker_id:
            return []
        orphan = self.recovery.claim_orphan(previous_id)
        previous = orphan or self.sessions.get(previous_id)
        if previous is None:
            return []
        resumed = []
        for job_id in job_ids:
            job = self.leases.transfer(job_id, previous, session, now)
            if job is not None:
                self.store.save(job)
                resumed.append(job_id)
        if orphan is not None:
            self.recovery.recover_all(now, orphan, "not resumed after the coordinator restarted")
        else:
            self.end_session(now, previous, "replaced")
        return resumed

    def end_session(self, now: float, session: Session, reason: str) -> None:
        """End a session: recover its jobs as failed attempts, forget its fetch."""
        if not self.sessions.close(session, now):
            return
        self.fetching.drop(session)
        self.recovery.recover_all(now, session, reason)
        if session.registered:
            self.port.publish(self.sessions.profiles())
        log.debug("worker %s ended: %s", session.worker_id, reason)  # nodes.observe.logs says it
        self.port.emit(events.WORKER_LOST, worker_id=session.worker_id, reason=reason)

    def deregister(self, now: float, peer: bytes, request: m.Deregister) -> None:
        session = self.sessions.of(peer, request.worker_id)
        self.fetching.answer(now, session)  # a parked fetch gets its (empty) answer, not silence
        self.end_session(now, session, "deregistered")
        self._reply(peer, request.rid)

    def _reply(self, peer: bytes, rid: m.Rid, **fields: Any) -> None:
        self.port.send(peer, codec.reply(rid, **fields))

    # -- beats and directives -----------------------------------------------------------------

    def beat(self, now: float, peer: bytes, request: m.Beat) -> None:
        session = self.sessions.of(peer, request.worker_id)
        wanted = session.directive or request.state
        session.reported = request.state
        was_running = session.running
        session.state = states.next_worker_state(session.state, wanted)
        abandon = []
        for job_id in request.active_job_ids:
            job = session.active.get(job_id)
            if job is None:
                abandon.append(job_id)  # cancelled, or no longer its own
            else:
                self.leases.renew(job, now)
        for job, fraction, message in keep_progress(now, session, request.progress):
            self.port.emit(events.JOB_PROGRESS, job=job, fraction=fraction, message=message)
        if not was_running and session.running:
            self.fetching.slot_freed(now, session)  # a parked fetch of a quiet worker may go on
        elif was_running and not session.running:
            self.fetching.paused(session)
        self._reply(
            peer,
            request.rid,
            state=session.state,
            visibility_timeout=self.settings.visibility_timeout,
            cancel_job_ids=abandon,
        )

    def progress_of(self, job_id: str, worker_id: str, attempt: int) -> dict[str, Any] | None:
        """The last progress reported of this attempt of an active job (read by `get`)."""
        return progress_of(self.sessions.live.get(worker_id), job_id, attempt)

    def direct(self, now: float, peer: bytes, request: m.Direct) -> None:
        session = self.sessions.get(request.worker_id)
        if session is None:
            raise UnknownWorker(f"no live worker {request.worker_id}")
        if session.directive != states.TERMINATE:
            session.directive = request.state
        self.port.emit(events.WORKER_DIRECTED, worker_id=session.worker_id, state=request.state)
        log.debug("worker %s directed to %s", session.worker_id, request.state)
        self._reply(peer, request.rid)

    # -- fetches and results ------------------------------------------------------------------

    def fetch(self, now: float, peer: bytes, request: m.Fetch) -> None:
        self.fetching.fetch(now, self.sessions.of(peer, request.worker_id), request)

    def ack(self, now: float, peer: bytes, request: m.Ack) -> None:
        session = self.sessions.of(peer, request.worker_id)
        self.results.complete(now, session, request.job_id, request.attempt, request.result)
        self._reply(peer, request.rid)  # the contract's ack reply is empty
        self.fetching.slot_freed(now, session)

    def fail(self, now: float, peer: bytes, request: m.Fail) -> None:
        session = self.sessions.of(peer, request.worker_id)
        fields = self.results.fail(now, session, request.job_id, request.attempt, request.error)
        self._reply(peer, request.rid, **fields)
        self.fetching.slot_freed(now, session)

    def outcomes(self, now: float, peer: bytes, request: m.Outcomes) -> None:
        """Extension: each item exactly as its own ack or fail would be, one reply for all.

        An item refused (not_owner, unknown_job, too_large) changes nothing and does not stop
        the others; freed slots are offered to the worker's parked fetch once, at the end.
        """
        session = self.sessions.of(peer, request.worker_id)
        results: list[dict[str, Any]] = []
        for item in request.outcomes:
            try:
                if item.too_large:
                    raise TooLarge(f"job {item.job_id}: exceeds max_result_size")
                if item.error is None:
                    fields = self.results.complete(
                        now, session, item.job_id, item.attempt, item.result
                    )
                else:
                    fields = self.results.fail(now, session, item.job_id, item.attempt, item.error)
                results.append(fields)
            except CorralError as exc:
                results.append({"code": exc.code, "message": exc.message})
        self._reply(peer, request.rid, results=results)
        self.fetching.slot_freed(now, session)

    # -- time ---------------------------------------------------------------------------------

    def _forgive_own_stall(self, now: float) -> None:
        """If this coordinator itself was frozen (SIGSTOP, a swapped-out VM), its silence is not
        the workers': credit every session and lease with the stall before judging anyone, so
        beats waiting in the socket get read before a healthy worker is declared dead."""
        settings = self.settings
        last, self.last_tick = self.last_tick, now
        stall = now - last - settings.reaper_interval if last else 0.0
        if stall <= settings.heartbeat_interval:
            return
        log.warning("coordinator stalled for %.1f s; extending every session and lease", stall)
        self.sessions.credit(now, settings.heartbeat_interval)
        self.leases.credit(stall)
        self.recovery.credit(stall)
